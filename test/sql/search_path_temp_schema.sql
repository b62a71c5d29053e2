-- A search_path naming pg_temp is fingerprinted without creating the
-- backend's temporary schema (fingerprint.c, hash_search_path): pg_temp
-- counts as "pg_temp" wherever it is written, whether or not this session
-- has a temporary schema yet.
SET client_min_messages = warning;
\set VERBOSITY terse

-- pg_temp first: no temporary schema is created for the fingerprint
SET search_path = pg_temp, public;
SELECT idem_execute('tmp-super', 'SELECT 0 AS zero') ->> 'replayed' AS replayed;
SELECT pg_my_temp_schema() = 0 AS no_temp_schema_created;
SELECT idem_forget('tmp-super') AS forgotten;
RESET search_path;
-- a new session: without a temporary schema
\c -
SET client_min_messages = warning;
\set VERBOSITY terse

-- pg_temp first: idem_execute neither creates the temporary schema nor
-- needs the TEMP privilege, which plain statements do not need either
CREATE ROLE idem_tmp_notemp;
GRANT USAGE ON SCHEMA public TO idem_tmp_notemp;
SELECT format('REVOKE TEMP ON DATABASE %I FROM PUBLIC', current_database()) \gexec
SET ROLE idem_tmp_notemp;
SET search_path = pg_temp, public;
SELECT idem_execute('tmp-first', 'SELECT 1 AS one') ->> 'replayed' AS replayed;
SELECT idem_execute('tmp-first', 'SELECT 1 AS one') ->> 'replayed' AS replayed;
SELECT pg_my_temp_schema() = 0 AS no_temp_schema_created;
SELECT idem_forget('tmp-first') AS forgotten;
RESET search_path;
RESET ROLE;
SELECT format('GRANT TEMP ON DATABASE %I TO PUBLIC', current_database()) \gexec
\c -
SET client_min_messages = warning;
\set VERBOSITY terse

-- pg_temp last (as SECURITY DEFINER functions set it): a key stored before
-- this session had a temporary schema replays after it has one
SET search_path = public, pg_temp;
SELECT idem_execute('tmp-last', 'SELECT 2 AS two') ->> 'replayed' AS replayed;
CREATE TEMP TABLE tmp_exists (i int);
SELECT pg_my_temp_schema() <> 0 AS temp_schema_exists;
SELECT idem_execute('tmp-last', 'SELECT 2 AS two') ->> 'replayed' AS replayed;
\echo :LAST_ERROR_SQLSTATE
-- and pg_temp is still part of the request: without it, another request
SET search_path = public;
SELECT idem_execute('tmp-last', 'SELECT 2 AS two') ->> 'replayed' AS replayed;
\echo :LAST_ERROR_SQLSTATE
RESET search_path;

DROP TABLE tmp_exists;
SELECT idem_forget('tmp-last') AS forgotten;
DROP OWNED BY idem_tmp_notemp;
DROP ROLE idem_tmp_notemp;
