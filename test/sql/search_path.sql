--
-- search_path: the extension's own queries on its keys table cannot be
-- captured through search_path.  A hostile schema placed before
-- pg_catalog holds a decoy idempotency_keys table, a now() function and
-- the operators the extension's queries use (text =, ||, timestamptz <=,
-- >, + interval); a temporary table named idempotency_keys shadows the
-- real one for unqualified names.  None of them is ever used: every decoy
-- function raises a NOTICE when called, and no NOTICE appears below; the
-- real key is recorded, with a real expiry, and replays.
--
\set VERBOSITY terse

-- the hostile schema belongs to an ordinary role: if the extension ran
-- any of its objects, it would run them with the keys table owner's rights
CREATE ROLE regress_sp_evil;
CREATE SCHEMA sp_evil AUTHORIZATION regress_sp_evil;
CREATE TABLE sp_t (v text);
GRANT SELECT, INSERT ON sp_t TO regress_sp_evil;

SET ROLE regress_sp_evil;
CREATE TABLE sp_evil.idempotency_keys (LIKE public.idempotency_keys);
CREATE FUNCTION sp_evil.now() RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN
	RAISE NOTICE 'sp_evil.now() called by %', current_user;
	RETURN '2000-01-01 00:00:00+00';
END $$;
CREATE FUNCTION sp_evil.text_eq(text, text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	RAISE NOTICE 'sp_evil text = called by %', current_user;
	RETURN true;
END $$;
CREATE OPERATOR sp_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = sp_evil.text_eq);
CREATE FUNCTION sp_evil.text_cat(text, text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	RAISE NOTICE 'sp_evil text || called by %', current_user;
	RETURN 'role:postgres';
END $$;
CREATE OPERATOR sp_evil.|| (LEFTARG = text, RIGHTARG = text, FUNCTION = sp_evil.text_cat);
CREATE FUNCTION sp_evil.ts_le(timestamptz, timestamptz) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	RAISE NOTICE 'sp_evil timestamptz <= called by %', current_user;
	RETURN true;
END $$;
CREATE OPERATOR sp_evil.<= (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = sp_evil.ts_le);
CREATE FUNCTION sp_evil.ts_gt(timestamptz, timestamptz) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	RAISE NOTICE 'sp_evil timestamptz > called by %', current_user;
	RETURN false;
END $$;
CREATE OPERATOR sp_evil.> (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = sp_evil.ts_gt);
CREATE FUNCTION sp_evil.ts_pl(timestamptz, interval) RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN
	RAISE NOTICE 'sp_evil timestamptz + interval called by %', current_user;
	RETURN '2000-01-01 00:00:00+00';
END $$;
CREATE OPERATOR sp_evil.+ (LEFTARG = timestamptz, RIGHTARG = interval, FUNCTION = sp_evil.ts_pl);
CREATE FUNCTION sp_evil.tid_eq(tid, tid) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	RAISE NOTICE 'sp_evil tid = called by %', current_user;
	RETURN true;
END $$;
CREATE OPERATOR sp_evil.= (LEFTARG = tid, RIGHTARG = tid, FUNCTION = sp_evil.tid_eq);
RESET ROLE;

-- the decoys work: with sp_evil first, an unqualified now() and = are the
-- hostile ones (this is what the extension must not pick up)
SET search_path = sp_evil, pg_catalog, public;
SELECT now() = '2000-01-01 00:00:00+00'::timestamptz AS decoy_now_works;
SELECT 'a'::text = 'b'::text AS decoy_eq_works;
RESET search_path;

-- 1. plans first made under the normal search_path, then used under the
-- hostile one (a cached plan is re-analyzed when search_path changes)
SELECT idem_execute('sp-1', 'INSERT INTO public.sp_t VALUES ($1) RETURNING v', 'one') -> 'replayed' AS replayed;
SELECT idem_execute('sp-forget-me', 'SELECT 1 AS one') -> 'replayed' AS replayed;
UPDATE idempotency_keys SET expires_at = pg_catalog.now() - interval '1 minute' WHERE key = 'sp-forget-me';
SET search_path = sp_evil, pg_catalog, public;
-- the same text under another search_path is another request since 1.1:
-- IK001, not a rerun (the decoy <= would call it expired)
SELECT idem_execute('sp-1', 'INSERT INTO public.sp_t VALUES ($1) RETURNING v', 'one') -> 'replayed' AS replayed;
-- a different request under sp-1 is still IK001
SELECT idem_execute('sp-1', 'INSERT INTO public.sp_t VALUES ($1) RETURNING v', 'two');
-- a new key (the decoy = would match any row; the decoy + would expire it)
SELECT idem_execute('sp-2', 'INSERT INTO public.sp_t VALUES ($1) RETURNING v', 'two') -> 'replayed' AS replayed;
SELECT idem_execute('sp-2', 'INSERT INTO public.sp_t VALUES ($1) RETURNING v', 'two') -> 'replayed' AS replayed;
-- lookup (the decoy > would hide every key), forget, purge (decoy tid =)
SELECT idem_lookup('sp-1') -> 'rows' AS rows;
SELECT idem_lookup('sp-none') IS NULL AS unknown_is_null;
SELECT idem_forget('sp-2') AS forgot;
SELECT idem_forget('sp-none') AS forgot;
SELECT idem_purge() AS purged;
RESET search_path;
-- the real table has the real keys, with real expiry times; the decoy
-- table is empty
SELECT key, expires_at > pg_catalog.now() AS live,
	   expires_at - created_at = interval '24 hours' AS ttl_24h
FROM public.idempotency_keys ORDER BY key;
SELECT count(*) AS decoy_rows FROM sp_evil.idempotency_keys;
SELECT v FROM sp_t ORDER BY v;

-- 2. a pg_temp table named idempotency_keys shadows the real one for
-- unqualified table names (pg_temp is searched first), yet the keys go to
-- the extension's table
CREATE TEMP TABLE idempotency_keys (LIKE public.idempotency_keys);
SELECT idem_execute('sp-temp', 'SELECT 1 AS one') -> 'replayed' AS replayed;
SELECT idem_execute('sp-temp', 'SELECT 1 AS one') -> 'replayed' AS replayed;
SELECT count(*) AS temp_decoy_rows FROM pg_temp.idempotency_keys;
SELECT count(*) AS real_rows FROM public.idempotency_keys WHERE key = 'sp-temp';
DROP TABLE pg_temp.idempotency_keys;

-- 3. an ordinary role putting its hostile schema first: its keys are
-- recorded normally and none of its functions runs, as itself or as the
-- keys table's owner
SET ROLE regress_sp_evil;
SET search_path = sp_evil, pg_catalog, public;
SELECT idem_execute('sp-evil-role', 'INSERT INTO public.sp_t VALUES ($1) RETURNING v', 'evil') -> 'replayed' AS replayed;
SELECT idem_execute('sp-evil-role', 'INSERT INTO public.sp_t VALUES ($1) RETURNING v', 'evil') -> 'replayed' AS replayed;
SELECT idem_lookup('sp-evil-role') -> 'rows' AS rows;
SELECT idem_forget('sp-1') AS cannot_forget_others;
RESET search_path;
SELECT owner, scope, key FROM idempotency_keys ORDER BY key;
RESET ROLE;

-- 4. a new session whose very first call runs under the hostile
-- search_path: the extension's queries are planned there, and still
-- only use the real objects
\c
\set VERBOSITY terse
SET search_path = sp_evil, pg_catalog, public;
SELECT idem_execute('sp-fresh', 'INSERT INTO public.sp_t VALUES ($1) RETURNING v', 'fresh') -> 'replayed' AS replayed;
SELECT idem_execute('sp-fresh', 'INSERT INTO public.sp_t VALUES ($1) RETURNING v', 'fresh') -> 'replayed' AS replayed;
SELECT idem_lookup('sp-fresh') -> 'rows' AS rows;
SELECT idem_purge(10) AS purged;
-- search_path set to the hostile schema alone (pg_catalog is then
-- searched first, implicitly) with qualified calls: another search_path,
-- so IK001 (never a rerun)
SET search_path = sp_evil;
SELECT public.idem_execute('sp-fresh', 'INSERT INTO public.sp_t VALUES ($1) RETURNING v', 'fresh') OPERATOR(pg_catalog.->) 'replayed' AS replayed;
RESET search_path;
SELECT key, expires_at > pg_catalog.now() AS live FROM public.idempotency_keys ORDER BY key;
SELECT count(*) AS decoy_rows FROM sp_evil.idempotency_keys;
SELECT v, count(*) FROM sp_t GROUP BY v ORDER BY v;

-- clean up
DROP TABLE sp_t;
DROP SCHEMA sp_evil CASCADE;
DROP ROLE regress_sp_evil;
DELETE FROM idempotency_keys;
