-- The tables every client program in test/clients uses.  run.sh loads this
-- into a fresh database per client and connection path (direct, pooler).
CREATE EXTENSION idempotency;
CREATE TABLE payments (id bigserial PRIMARY KEY, customer text NOT NULL, amount numeric NOT NULL);
-- a request of several writes, for idem_begin/idem_finish
CREATE TABLE orders (id bigserial PRIMARY KEY, sku int NOT NULL);
CREATE TABLE ledger (order_id bigint NOT NULL, amount numeric NOT NULL);
-- the concurrent clients' effects: exactly one row per key must remain
CREATE TABLE hammer (id bigserial PRIMARY KEY, key text NOT NULL);
