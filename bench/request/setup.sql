-- Schema of the request benchmark (bench/request.sh): one request of three
-- writes (an order, the stock of its sku, a ledger row), and the keys table
-- and functions a user would write by hand for it (Stripe's design: claim a
-- row at the start, store the response at the end).
SET client_min_messages = warning;

CREATE EXTENSION idempotency;

CREATE TABLE orders (
    id      bigserial PRIMARY KEY,
    sku     int NOT NULL,
    qty     int NOT NULL
);
-- updated in place by every request: room on each page for HOT updates
CREATE TABLE stock (
    sku     int PRIMARY KEY,
    qty     bigint NOT NULL
) WITH (fillfactor = 50);
INSERT INTO stock SELECT g, 1000000000 FROM generate_series(1, 1000) AS g;
CREATE TABLE ledger (
    id       bigserial PRIMARY KEY,
    order_id bigint NOT NULL,
    amount   numeric NOT NULL
);

-- H: the hand-written keys table.  hand_begin claims the key with INSERT ...
-- ON CONFLICT DO NOTHING (whose unique-index wait makes a concurrent
-- duplicate wait for the holder), or returns the stored response, checking
-- the request; hand_finish stores the response.  Two writes per new key.
CREATE TABLE hand_keys (
    key        text PRIMARY KEY,
    request    jsonb,
    response   jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL DEFAULT now() + interval '24 hours'
);

CREATE FUNCTION hand_begin(p_key text, p_request jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    stored hand_keys;
BEGIN
    INSERT INTO hand_keys(key, request) VALUES (p_key, p_request)
        ON CONFLICT (key) DO NOTHING;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    SELECT * INTO stored FROM hand_keys WHERE key = p_key;
    IF stored.request IS DISTINCT FROM p_request THEN
        RAISE EXCEPTION 'key % was used with a different request', p_key;
    END IF;
    IF stored.response IS NULL THEN
        RAISE EXCEPTION 'key % has no response', p_key;
    END IF;
    RETURN stored.response;
END
$$;

CREATE FUNCTION hand_finish(p_key text, p_response jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE hand_keys SET response = p_response WHERE key = p_key;
    RETURN p_response;
END
$$;
