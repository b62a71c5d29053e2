--
-- guard_trigger_order: the guard decides on the row that is really
-- inserted.  Other BEFORE INSERT row triggers on the table may change the
-- key or drop the row.  PostgreSQL fires BEFORE triggers in name order (byte
-- order, as COLLATE "C" sorts), and the guard's trigger is named
-- zz_idempotency_guard so that it fires after them: a row dropped by another
-- trigger records no key (so its corrected retry goes in), and the key is
-- the key column's value in the row that is stored.
--
-- That holds for every trigger whose name sorts before zz_idempotency_guard,
-- which is nearly every name, including ones starting with "z_" or "zz_a".
-- A name that sorts after it, such as zzz_late or zz_validate, fires after
-- the guard has claimed the key: if such a trigger drops the row, the key
-- stays recorded and a retry is skipped as a duplicate.  That is the
-- documented limitation: name your row-dropping BEFORE triggers so that
-- they sort before zz_idempotency_guard.  The last case shows it.
--
\set VERBOSITY terse

-- the triggers of a table (here all BEFORE INSERT FOR EACH ROW) in the order
-- PostgreSQL fires them: by name, byte by byte
CREATE FUNCTION gto_firing_order(t regclass) RETURNS SETOF text LANGUAGE sql AS $$
	SELECT tgname::text FROM pg_trigger
	WHERE tgrelid = t AND NOT tgisinternal
	ORDER BY tgname COLLATE "C"
$$;

-- a validating trigger that drops rows; "validate" sorts before the guard
CREATE TABLE gto_validated (k text, ok boolean);
SELECT idem_guard('gto_validated', 'k');
CREATE FUNCTION gto_reject() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NOT NEW.ok THEN
		RETURN NULL;
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER validate BEFORE INSERT ON gto_validated
	FOR EACH ROW EXECUTE FUNCTION gto_reject();
SELECT gto_firing_order('gto_validated');
-- rejected by the validator: nothing goes in, so no key may be recorded
INSERT INTO gto_validated VALUES ('m1', false);
\echo inserted :ROW_COUNT
SELECT count(*) AS m1_keys FROM idempotency_keys WHERE key = 'm1';
-- the corrected retry goes in
INSERT INTO gto_validated VALUES ('m1', true);
\echo inserted :ROW_COUNT
-- and a further retry is a duplicate
INSERT INTO gto_validated VALUES ('m1', true);
\echo inserted :ROW_COUNT
SELECT * FROM gto_validated;

-- a normalizing trigger named to fire late: "z_normalize" still sorts before
-- the guard ('_' sorts before 'z'), so the key is the stored value
CREATE TABLE gto_late (k text);
SELECT idem_guard('gto_late', 'k');
CREATE FUNCTION gto_lower() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	NEW.k := lower(NEW.k);
	RETURN NEW;
END $$;
CREATE TRIGGER z_normalize BEFORE INSERT ON gto_late
	FOR EACH ROW EXECUTE FUNCTION gto_lower();
SELECT gto_firing_order('gto_late');
INSERT INTO gto_late VALUES ('A');
\echo inserted :ROW_COUNT
-- 'a' is the value already stored: a duplicate
INSERT INTO gto_late VALUES ('a');
\echo inserted :ROW_COUNT
SELECT k, count(*) FROM gto_late GROUP BY k ORDER BY k;
SELECT key FROM idempotency_keys
WHERE scope = (SELECT guard_id FROM idempotency_guards
			   WHERE tbl = 'gto_late'::regclass);

-- the same trigger named to fire early
CREATE TABLE gto_early (k text);
SELECT idem_guard('gto_early', 'k');
CREATE TRIGGER a_normalize BEFORE INSERT ON gto_early
	FOR EACH ROW EXECUTE FUNCTION gto_lower();
SELECT gto_firing_order('gto_early');
INSERT INTO gto_early VALUES ('A');
\echo inserted :ROW_COUNT
INSERT INTO gto_early VALUES ('a');
\echo inserted :ROW_COUNT
SELECT k, count(*) FROM gto_early GROUP BY k ORDER BY k;

-- the limitation: "zzz_late" sorts after zz_idempotency_guard, so it fires
-- after the guard claimed the key; the row it drops leaves its key recorded
-- and the corrected retry is skipped as a duplicate
CREATE TABLE gto_after (k text, ok boolean);
SELECT idem_guard('gto_after', 'k');
CREATE TRIGGER zzz_late BEFORE INSERT ON gto_after
	FOR EACH ROW EXECUTE FUNCTION gto_reject();
SELECT gto_firing_order('gto_after');
INSERT INTO gto_after VALUES ('m1', false);
\echo inserted :ROW_COUNT
SELECT key FROM idempotency_keys
WHERE scope = (SELECT guard_id FROM idempotency_guards
			   WHERE tbl = 'gto_after'::regclass);
INSERT INTO gto_after VALUES ('m1', true);
\echo inserted :ROW_COUNT
SELECT count(*) AS m1_rows FROM gto_after;
-- renamed so that it sorts before the guard, it behaves (once the wrongly
-- recorded key is gone: guarding anew starts with no keys)
ALTER TRIGGER zzz_late ON gto_after RENAME TO validate;
SELECT gto_firing_order('gto_after');
SELECT idem_unguard('gto_after');
SELECT idem_guard('gto_after', 'k');
INSERT INTO gto_after VALUES ('m2', false);
\echo inserted :ROW_COUNT
INSERT INTO gto_after VALUES ('m2', true);
\echo inserted :ROW_COUNT
SELECT * FROM gto_after;

-- clean up
SELECT idem_unguard('gto_validated');
SELECT idem_unguard('gto_late');
SELECT idem_unguard('gto_early');
SELECT idem_unguard('gto_after');
DROP TABLE gto_validated, gto_late, gto_early, gto_after;
DROP FUNCTION gto_reject(), gto_lower(), gto_firing_order(regclass);
DELETE FROM idempotency_keys;
