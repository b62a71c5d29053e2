-- The design to beat (issue 10): a time-partitioned key store, in plain SQL,
-- as pg_partman users build one.  part_keys has the keys table's columns
-- (LIKE idempotency_keys, so it follows the layout), is partitioned by
-- RANGE (expires_at), and expires keys by dropping every partition whose
-- upper bound has passed: no DELETE, no dead tuples, nothing for VACUUM.
--
-- What it costs elsewhere, and why it is only a prototype here:
--   - A primary key of a partitioned table must contain the partition key,
--     so it is (<the keys table's primary key>, expires_at): the database no
--     longer enforces one row per key.  The store would have to enforce it
--     itself (the key lock of claim.c, then a probe of every partition),
--     and every lookup by key probes every partition's index
--     (lookup_loop below measures it).
--   - DETACH PARTITION and DROP TABLE take an ACCESS EXCLUSIVE lock on the
--     parent: for that moment every caller waits, which the SPEC forbids
--     the purge to do (DETACH ... CONCURRENTLY avoids it but cannot run in
--     a transaction block, so needs an outside scheduler).
--   - Partitions must be created ahead of time (another scheduled job), and
--     a key whose TTL outruns the last partition has nowhere to go.

-- part_setup(t0, ttl, width): part_keys with partitions of width covering
-- [t0 - 1 hour, t0 + 2 hours + ttl + width): the expired keys of
-- preload_keys (the last hour before t0) in the first, the live ones (from
-- t0 + 2 hours on) in the others.
CREATE FUNCTION part_setup(t0 timestamptz, ttl interval, width interval)
RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    pk    text;
    lo    timestamptz := t0 - interval '1 hour';
    k     int := 0;
BEGIN
    -- the keys table's primary key, with the partition key added unless
    -- it is in it already (1.1's primary key ends with expires_at)
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY x.ord)
           || CASE WHEN bool_or(a.attname = 'expires_at') THEN '' ELSE ', expires_at' END
      INTO pk
      FROM pg_index i
      CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS x(attnum, ord)
      JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = x.attnum
     WHERE i.indrelid = 'idempotency_keys'::regclass AND i.indisprimary;
    IF pk IS NULL THEN
        RAISE EXCEPTION 'part_setup: idempotency_keys has no primary key';
    END IF;
    CREATE TABLE part_bounds (part regclass PRIMARY KEY, upper_bound timestamptz NOT NULL);
    EXECUTE 'CREATE TABLE part_keys (LIKE idempotency_keys INCLUDING DEFAULTS)
             PARTITION BY RANGE (expires_at)';
    EXECUTE format('ALTER TABLE part_keys ADD PRIMARY KEY (%s)', pk);
    WHILE lo < t0 + interval '2 hours' + ttl + width LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF part_keys FOR VALUES FROM (%L) TO (%L)',
                       'part_keys_' || k, lo, lo + width);
        INSERT INTO part_bounds VALUES (('part_keys_' || k)::regclass, lo + width);
        lo := lo + width;
        k := k + 1;
    END LOOP;
    RETURN k;
END
$$;

-- part_expire(): drop every partition whose upper bound has passed
-- (DETACH, then DROP, as pg_partman's retention does); returns how many.
CREATE FUNCTION part_expire()
RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    p regclass;
    n int := 0;
BEGIN
    FOR p IN SELECT part FROM part_bounds WHERE upper_bound <= now() ORDER BY upper_bound LOOP
        EXECUTE format('ALTER TABLE part_keys DETACH PARTITION %s', p);
        DELETE FROM part_bounds WHERE part = p;
        EXECUTE format('DROP TABLE %s', p);
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;

-- lookup_loop(variant, n, n_live): n primary-key lookups of live keys
-- 'l-<random>' (the preload's), in the plain keys table ('plain') or in
-- part_keys ('partitioned'), from a PL/pgSQL loop that keeps the plans;
-- microseconds per lookup.  A lookup that finds nothing is an error.
CREATE FUNCTION lookup_loop(variant text, n int, n_live bigint)
RETURNS float8
LANGUAGE plpgsql AS $$
DECLARE
    t0      timestamptz := clock_timestamp();
    r       jsonb;
    k       text;
    v_owner regrole := current_user::regrole;
BEGIN
    PERFORM setseed(0.5);
    FOR i IN 1..n LOOP
        k := 'l-' || (1 + floor(random() * n_live))::bigint;
        IF variant = 'plain' THEN
            SELECT t.result INTO r FROM idempotency_keys t
             WHERE t.owner = v_owner AND t.scope = '' AND t.key = k;
        ELSE
            SELECT t.result INTO r FROM part_keys t
             WHERE t.owner = v_owner AND t.scope = '' AND t.key = k;
        END IF;
        IF r IS NULL THEN
            RAISE EXCEPTION 'lookup_loop: no key % in %', k, variant;
        END IF;
    END LOOP;
    RETURN extract(epoch FROM clock_timestamp() - t0) * 1e6 / n;
END
$$;
