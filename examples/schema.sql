-- The tables of both examples (Django creates the same ones from its models
-- with `manage.py migrate --run-syncdb`).
CREATE EXTENSION IF NOT EXISTS idempotency;
CREATE TABLE orders (id bigserial PRIMARY KEY, sku integer NOT NULL, quantity integer NOT NULL);
CREATE TABLE stock (sku integer PRIMARY KEY, available integer NOT NULL);
CREATE TABLE ledger (id bigserial PRIMARY KEY, order_id bigint NOT NULL REFERENCES orders, amount numeric(10, 2) NOT NULL);
