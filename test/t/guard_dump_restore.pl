
# The dedup guard survives pg_dump and pg_restore (issue 3): the restored
# database has the guard trigger with the same guard id, the registry maps
# that id to the restored table (a new OID), the guard's keys are there, so
# a redelivered event is still skipped and a new one goes in; a renamed
# table keeps its guard through the dump too.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('guard_dump_restore');
$node->init;
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql(
	'src', q{
	CREATE EXTENSION idempotency;
	CREATE TABLE events (event_id text, received date NOT NULL, payload text)
		PARTITION BY RANGE (received);
	CREATE TABLE events_2026 PARTITION OF events
		FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
	SELECT idem_guard('events', 'event_id');
	COPY events FROM stdin;
e1	2026-03-01	first
e2	2026-03-02	second
e1	2026-03-03	redelivered
\.
	CREATE TABLE orders_old (order_id bigint, note text);
	SELECT idem_guard('orders_old', 'order_id', '7 days', 'error');
	INSERT INTO orders_old VALUES (1, 'a'), (2, 'b');
	ALTER TABLE orders_old RENAME TO orders;
});

my $guards_src = $node->safe_psql('src',
	"SELECT tbl::text || ' ' || guard_id FROM idempotency_guards ORDER BY 1");
my $keys_src = $node->safe_psql('src',
	"SELECT owner || ' ' || scope || ' ' || key FROM idempotency_keys ORDER BY 1");
is($node->safe_psql('src', 'SELECT count(*) FROM events'),
	'2', 'before the dump: the redelivered event was skipped');
is($node->safe_psql('src', 'SELECT count(*) FROM idempotency_keys'),
	'4', 'before the dump: four guard keys');

my $dump = PostgreSQL::Test::Utils::tempdir() . '/src.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('src') ],
	'pg_dump of the guarded database');
$node->safe_psql('postgres', 'CREATE DATABASE dst');
$node->command_ok(
	[ 'pg_restore', '--exit-on-error', '-d', $node->connstr('dst'), $dump ],
	'pg_restore into a new database');

is( $node->safe_psql('dst',
		"SELECT tbl::text || ' ' || guard_id FROM idempotency_guards ORDER BY 1"),
	$guards_src,
	'the registry maps the same guard ids to the restored tables');
is( $node->safe_psql('dst',
		"SELECT owner || ' ' || scope || ' ' || key FROM idempotency_keys ORDER BY 1"),
	$keys_src,
	'the guard keys were restored');
is( $node->safe_psql(
		'dst', q{
	SELECT count(*) FROM idempotency_guards g
	JOIN pg_trigger t ON t.tgrelid = g.tbl AND t.tgname = 'zz_idempotency_guard'
	WHERE split_part(encode(t.tgargs, 'escape'), '\000', 1) = g.guard_id}),
	'2',
	'each restored guard trigger carries its registered guard id');
isnt(
	$node->safe_psql('dst', "SELECT 'events'::regclass::oid"),
	$node->safe_psql('src', "SELECT 'events'::regclass::oid"),
	'the restored table has a new OID (so keying on OIDs would have failed)');

# a redelivery after the restore is skipped, a new event goes in
$node->safe_psql(
	'dst', q{
	COPY events FROM stdin;
e1	2026-04-01	redelivered after restore
e3	2026-04-01	new after restore
\.
});
is( $node->safe_psql('dst',
		'SELECT string_agg(event_id, \',\' ORDER BY event_id) FROM events'),
	'e1,e2,e3',
	'after the restore a redelivered event is skipped and a new one goes in');

# the renamed table's guard kept its settings: error mode, 23505
my ($rc, $out, $err) =
  $node->psql('dst', "INSERT INTO orders VALUES (2, 'again')");
like($err, qr/duplicate key value violates idempotency guard on "orders"/,
	'the renamed table is still guarded, in error mode, after the restore');
is($node->safe_psql('dst', 'SELECT count(*) FROM orders'),
	'2', 'and the duplicate did not go in');

$node->stop;
done_testing();
