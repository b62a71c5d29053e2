-- Preload of the expiry-cost measurement (bench/churn.sh): the only place
-- in the churn benchmark that knows the keys table's columns.
--
-- preload_keys(target, n_live, n_expired, ttl) inserts n_live + n_expired
-- rows into target (idempotency_keys, or the partitioned prototype, which is
-- made LIKE it) with one INSERT ... SELECT, the expired ones spread evenly
-- among the live ones in insertion order, as keys land after a while of
-- churn (a purge frees space everywhere, new keys fill it):
--   live:    key 'l-<i>', created at t0, expiring evenly over a ttl that
--            starts 2 hours after t0 (so none expires while the benchmark runs)
--   expired: key 'x-<i>', expired evenly over the last hour
-- The column list comes from the table itself (pg_attribute): owner, scope,
-- key, created_at and expires_at are computed as above; every other column
-- (fingerprint, result, and whatever a later layout adds) is copied from
-- the template key 'tpl', stored by a real idem_execute call (so the
-- fingerprint and result are those of the benchmark's call); a NOTICE names
-- the copied columns.  t0 is the reference time (expired keys expire before
-- it, live ones after it).
CREATE FUNCTION preload_keys(target regclass, n_live bigint, n_expired bigint,
                             ttl interval, t0 timestamptz, clustered boolean DEFAULT false)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    cols    text[] := '{}';
    exprs   text[] := '{}';
    copied  text[] := '{}';
    a       record;
    e       text;
    total   bigint := n_live + n_expired;
    n       bigint;
BEGIN
    FOR a IN
        SELECT attname, format_type(atttypid, atttypmod) AS typ
          FROM pg_attribute
         WHERE attrelid = 'idempotency_keys'::regclass AND attnum > 0
           AND NOT attisdropped AND attgenerated = ''
         ORDER BY attnum
    LOOP
        -- is_x: the row is expired; j: its number among the expired or the live
        e := CASE a.attname
            WHEN 'owner' THEN 't.owner'
            WHEN 'scope' THEN 't.scope'
            WHEN 'key' THEN 'CASE WHEN g.is_x THEN ''x-'' ELSE ''l-'' END || g.j'
            WHEN 'created_at' THEN
                'CASE WHEN g.is_x THEN g.x_at - $4 ELSE $5 END'
            WHEN 'expires_at' THEN
                'CASE WHEN g.is_x THEN g.x_at ELSE $5 + interval ''2 hours'' + $4 * (g.j::float8 / $2) END'
            END;
        IF e IS NULL THEN
            e := format('t.%I', a.attname);
            copied := copied || a.attname::text;
        END IF;
        cols := cols || quote_ident(a.attname);
        exprs := exprs || format('(%s)::%s', e, a.typ);
    END LOOP;
    IF cardinality(copied) > 0 THEN
        RAISE NOTICE 'preload_keys: columns copied from the template key: %', array_to_string(copied, ', ');
    END IF;
    -- row i is expired when i * n_expired / total steps up: exactly n_expired
    -- of them, evenly spread; clustered, rows 1 .. n_expired are (written
    -- first, they sit together at the start of the table)
    EXECUTE format(
        'INSERT INTO %s (%s)
         SELECT %s
           FROM (SELECT * FROM idempotency_keys
                  WHERE owner = current_user::regrole AND scope = '''' AND key = ''tpl'') AS t,
                LATERAL (SELECT s.i,
                                s.is_x,
                                CASE WHEN $6 THEN CASE WHEN s.is_x THEN s.i ELSE s.i - $3 END
                                     WHEN s.is_x THEN s.i * $3 / $1 ELSE s.i - s.i * $3 / $1 END AS j,
                                $5 - interval ''1 hour'' + interval ''59 minutes'' *
                                  ((CASE WHEN $6 THEN least(s.i, $3) ELSE s.i * $3 / $1 END)::float8 / greatest($3, 1)) AS x_at
                           FROM (SELECT i, CASE WHEN $6 THEN i <= $3
                                                ELSE (i * $3 / $1) <> ((i - 1) * $3 / $1) END AS is_x
                                   FROM generate_series(1::bigint, $1) AS i) AS s) AS g',
        target, array_to_string(cols, ', '), array_to_string(exprs, ', '))
    USING total, n_live, n_expired, ttl, t0, clustered;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n <> total THEN
        RAISE EXCEPTION 'preload_keys: % rows inserted, want % (no template key ''tpl''?)', n, total;
    END IF;
    RETURN n;
END
$$;
