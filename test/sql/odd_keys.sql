--
-- odd_keys: a key is an opaque string compared byte for byte.  Keys that
-- look like SQL injection, or hold quotes, backslashes, control
-- characters, format specifiers, LIKE wildcards or any Unicode, are stored
-- verbatim, replay, and never become part of any SQL.
--
\set VERBOSITY terse

-- the target of the injection attempts: it must survive
CREATE TABLE odd_victim (v int);
INSERT INTO odd_victim VALUES (1);

CREATE TABLE odd_keys_cases (id int PRIMARY KEY, label text, k text);
INSERT INTO odd_keys_cases VALUES
	(1, 'injection quote', $k$'); DROP TABLE odd_victim; --$k$),
	(2, 'injection dquote', $k$"; DROP TABLE odd_victim; --$k$),
	(3, 'injection classic', $k$Robert'); DROP TABLE odd_victim;--$k$),
	(4, 'injection dollar', $k$$$; DROP TABLE odd_victim; $$$k$),
	(5, 'backslashes', $k$a\b\\c\'d$k$),
	(6, 'control characters', E'line1\nline2\r\ttab\x01end'),
	(7, 'format specifiers', '%s %d %n %%s %1$s'),
	(8, 'like wildcards', 'a%_'),
	(9, 'like wildcard twin', 'ab_'),
	(10, 'leading space', ' k'),
	(11, 'trailing space', 'k '),
	(12, 'plain', 'k'),
	(13, 'upper case', 'K'),
	(14, 'emoji', '🔑💸 pay 😀'),
	(15, 'precomposed e-acute', U&'caf\00E9'),
	(16, 'decomposed e-acute', U&'cafe\0301'),
	(17, 'right-to-left', 'مفتاح'),
	(18, 'looks like a scope', 'role:postgres'),
	(19, 'json', '{"key": [1, "two"]}'),
	(20, 'long mixed', repeat($k$'"\ 🔑$k$, 25));

-- every key's length, within the default 255-byte limit
SELECT id, label, octet_length(k) AS bytes FROM odd_keys_cases ORDER BY id;

-- first calls: each key is new (also those differing only by case, a
-- space, a wildcard or Unicode normalization); the key is bound as $1 and
-- comes back unchanged
SELECT id, label,
	   r -> 'replayed' AS replayed,
	   r -> 'rows' -> 0 ->> 'k' = k AS echoed_verbatim
FROM odd_keys_cases, LATERAL idem_execute(k, 'SELECT $1 AS k', k) AS r
ORDER BY id;

-- the victim is still there
SELECT count(*) AS victim_rows FROM odd_victim;

-- each key is stored verbatim, once
SELECT c.id, count(ik.key) AS stored, bool_and(ik.key = c.k) AS verbatim
FROM odd_keys_cases c LEFT JOIN idempotency_keys ik ON ik.key = c.k
GROUP BY c.id ORDER BY c.id;
SELECT count(*) AS keys FROM idempotency_keys;

-- second calls replay, and idem_lookup finds each key
SELECT id,
	   idem_execute(k, 'SELECT $1 AS k', k) -> 'replayed' AS replayed,
	   idem_lookup(k) -> 'rows' -> 0 ->> 'k' = k AS lookup_ok
FROM odd_keys_cases ORDER BY id;

-- a different request under an odd key gets IK001 naming the key as given
SELECT idem_execute($k$'); DROP TABLE odd_victim; --$k$, 'SELECT 1');
SELECT idem_execute('%s %d %n %%s %1$s', 'SELECT 1');
SELECT idem_execute(E'line1\nline2', 'SELECT 1') -> 'replayed' AS replayed;
SELECT idem_execute(E'line1\nline2', 'SELECT 2');

-- idem_forget removes exactly the named key, not its look-alikes
SELECT idem_forget('a%_') AS forgot_wildcard;
SELECT idem_lookup('ab_') IS NOT NULL AS twin_kept;
SELECT idem_forget('k') AS forgot_plain;
SELECT idem_lookup(' k') IS NOT NULL AS leading_kept,
	   idem_lookup('k ') IS NOT NULL AS trailing_kept,
	   idem_lookup('K') IS NOT NULL AS upper_kept;
SELECT count(*) AS keys FROM idempotency_keys;

-- the victim survived it all
SELECT count(*) AS victim_rows FROM odd_victim;

-- clean up
DROP TABLE odd_keys_cases;
DROP TABLE odd_victim;
DELETE FROM idempotency_keys;
