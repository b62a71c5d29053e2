-- Schema of the churn benchmark (bench/churn.sh): the extension and the
-- payments table every call writes to, as in bench/execute (its setup.sql,
-- which also brings B1's table and a replay loop this benchmark does not
-- use), then the anchor's purge loop and the log of what it purged.  The
-- keys-table layout is used in one place only: preload.sql.
\ir ../execute/setup.sql

-- The anchor a user would schedule with pg_cron: every tick, idem_purge(batch)
-- again and again, each batch in its own transaction, until a batch comes
-- back short.  Each tick is logged, so the run can check that the purged
-- counter moved by exactly what the ticks purged.
CREATE TABLE anchor_ticks (
    at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    batches int NOT NULL,
    purged  bigint NOT NULL,
    ms      float8 NOT NULL
);

CREATE PROCEDURE anchor_tick(batch bigint)
LANGUAGE plpgsql AS $$
DECLARE
    t0      timestamptz := clock_timestamp();
    n       bigint;
    total   bigint := 0;
    batches int := 0;
BEGIN
    LOOP
        n := idem_purge(batch);
        total := total + n;
        batches := batches + 1;
        COMMIT;
        EXIT WHEN n < batch;
    END LOOP;
    INSERT INTO anchor_ticks (batches, purged, ms)
    VALUES (batches, total, extract(epoch FROM clock_timestamp() - t0) * 1000);
    COMMIT;
END
$$;

-- Expire keys the way the worker does (idem_purge in batches until one
-- comes back short, each batch its own transaction), for the expiry-cost
-- measurement; stops after max_seconds and returns what it purged by then.
CREATE PROCEDURE purge_all(batch bigint, max_seconds float8, INOUT purged bigint DEFAULT 0,
                           INOUT seconds float8 DEFAULT 0, INOUT finished boolean DEFAULT false)
LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz := clock_timestamp();
    n  bigint;
BEGIN
    purged := 0;
    finished := false;
    LOOP
        n := idem_purge(batch);
        purged := purged + n;
        COMMIT;
        IF n < batch THEN
            finished := true;
            EXIT;
        END IF;
        EXIT WHEN extract(epoch FROM clock_timestamp() - t0) >= max_seconds;
    END LOOP;
    seconds := extract(epoch FROM clock_timestamp() - t0);
END
$$;
