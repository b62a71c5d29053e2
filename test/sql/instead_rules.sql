--
-- instead_rules: DML on a view (or table) whose rules rewrite it runs under
-- a key and replays, as legacy schemas need.  The command word is the
-- statement's own (as psql's command tag shows it); row_count and rows are
-- those of the rewritten query of the same kind when there is one (as
-- PostgreSQL reports them), and 0 rows otherwise: a DO INSTEAD of another
-- kind, DO INSTEAD NOTHING, DO INSTEAD SELECT.  Never an internal error.
--
\set VERBOSITY terse

CREATE TABLE ir_items (id int PRIMARY KEY, note text, deleted boolean NOT NULL DEFAULT false);
CREATE VIEW ir_live AS SELECT id, note FROM ir_items WHERE NOT deleted;
CREATE TABLE ir_log (what text);

-- INSERT rewritten to an INSERT into the table, with RETURNING
CREATE RULE ir_live_ins AS ON INSERT TO ir_live DO INSTEAD
	INSERT INTO ir_items (id, note) VALUES (NEW.id, NEW.note) RETURNING id, note;
-- DELETE rewritten to an UPDATE: a soft delete
CREATE RULE ir_live_del AS ON DELETE TO ir_live DO INSTEAD
	UPDATE ir_items SET deleted = true WHERE id = OLD.id;
-- UPDATE rewritten to nothing
CREATE RULE ir_live_upd AS ON UPDATE TO ir_live DO INSTEAD NOTHING;

SELECT idem_execute('ir-ins', 'INSERT INTO ir_live VALUES ($1, $2) RETURNING id, note', 1, 'one');
SELECT idem_execute('ir-ins', 'INSERT INTO ir_live VALUES ($1, $2) RETURNING id, note', 1, 'one');
SELECT idem_execute('ir-ins-2', 'INSERT INTO ir_live VALUES (2, ''two''), (3, ''three'')');
SELECT idem_execute('ir-del', 'DELETE FROM ir_live WHERE id = $1', 2);
SELECT idem_execute('ir-del', 'DELETE FROM ir_live WHERE id = $1', 2);
SELECT idem_execute('ir-upd', 'UPDATE ir_live SET note = ''changed''');
SELECT idem_execute('ir-upd', 'UPDATE ir_live SET note = ''changed''');
SELECT * FROM ir_items ORDER BY id;

-- DO INSTEAD SELECT: the output of the rule's SELECT is not the statement's
CREATE VIEW ir_calls AS SELECT ''::text AS what;
CREATE FUNCTION ir_record(w text) RETURNS text LANGUAGE sql AS $$
	INSERT INTO ir_log VALUES (w) RETURNING what
$$;
CREATE RULE ir_calls_ins AS ON INSERT TO ir_calls DO INSTEAD
	SELECT ir_record(NEW.what);
SELECT idem_execute('ir-sel', 'INSERT INTO ir_calls VALUES (''called'')');
SELECT idem_execute('ir-sel', 'INSERT INTO ir_calls VALUES (''called'')');
SELECT * FROM ir_log;

-- DO ALSO on a table: both run, the statement's own counts
CREATE RULE ir_items_also AS ON INSERT TO ir_items DO ALSO
	INSERT INTO ir_log VALUES ('inserted ' || NEW.id);
SELECT idem_execute('ir-also', 'INSERT INTO ir_items (id, note) VALUES (4, ''four''), (5, ''five'') RETURNING id');
SELECT idem_execute('ir-also', 'INSERT INTO ir_items (id, note) VALUES (4, ''four''), (5, ''five'') RETURNING id');
SELECT * FROM ir_log ORDER BY what;

-- a rule whose action is NOTIFY
CREATE RULE ir_items_notify AS ON DELETE TO ir_items DO ALSO NOTIFY ir_items_changed;
SELECT idem_execute('ir-notify', 'DELETE FROM ir_items WHERE id = 5');
SELECT idem_execute('ir-notify', 'DELETE FROM ir_items WHERE id = 5');

SELECT key, command, result FROM idempotency_keys ORDER BY key;

-- clean up
DROP VIEW ir_live, ir_calls;
DROP FUNCTION ir_record(text);
DROP TABLE ir_items, ir_log;
DELETE FROM idempotency_keys;
