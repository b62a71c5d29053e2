
# A table that gets the OID of a dropped guarded table inherits nothing from
# it (issue 8, item 4): not its guard, not its keys.  The registry row of the
# dropped table is made to outlive it on purpose (its drop is hidden from the
# extension's sql_drop event trigger, as a drop in single-user mode, or of a
# temporary table guarded under 1.0, would be), then `pg_resetwal -o` on the
# stopped node hands the old OID to a new table.  Guarding the new table must
# start a new guard with no keys: its first rows, which share keys with the
# old table's, all go in.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# a guard's keys: scope 'guard:<id>' in 1.0's keys table, '<id>' in 1.1's

my $node = PostgreSQL::Test::Cluster->new('guard_oid_reuse');
$node->init;
$node->start;

$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION idempotency;
	CREATE TABLE old_events (event_id int);
	SELECT idem_guard('old_events', 'event_id');
	INSERT INTO old_events VALUES (1), (2), (3);
});
my $oid = $node->safe_psql('postgres', "SELECT 'old_events'::regclass::oid");
my $old_guard = $node->safe_psql('postgres',
	"SELECT guard_id FROM idempotency_guards WHERE tbl = $oid");
like($old_guard, qr/^[0-9a-hjkmnp-tv-z]{4}$/, "old_events (OID $oid) is guarded");
is( $node->safe_psql('postgres',
		"SELECT count(*) FROM idempotency_keys WHERE scope IN ('$old_guard', 'guard:$old_guard')"),
	'3',
	'the old guard has three keys');

# drop the table behind the event trigger's back: the registry row stays
$node->safe_psql(
	'postgres', q{
	ALTER EVENT TRIGGER idempotency_forget_dropped_guards DISABLE;
	DROP TABLE old_events;
	ALTER EVENT TRIGGER idempotency_forget_dropped_guards ENABLE ALWAYS;
});
is( $node->safe_psql('postgres',
		"SELECT count(*) FROM idempotency_guards WHERE tbl = $oid"),
	'1',
	'the registry row of the dropped table is left behind');

# the next OID handed out is the old table's: stop, pg_resetwal -o, start,
# create the new table (again if some other object took the OID first)
my $got = '';
for my $attempt (1 .. 3)
{
	# an OID is skipped while a dead pg_class row still has it, or while a
	# dropped table's first file is there (until a checkpoint after the
	# drop): vacuum pg_class and checkpoint before the stop
	$node->safe_psql('postgres', 'DROP TABLE IF EXISTS new_events');
	$node->safe_psql('postgres', 'VACUUM pg_catalog.pg_class');
	$node->safe_psql('postgres', 'CHECKPOINT');
	$node->stop;
	command_ok([ 'pg_resetwal', '-o', $oid, $node->data_dir ],
		"pg_resetwal -o $oid (attempt $attempt)");
	$node->start;
	$node->safe_psql('postgres', 'CREATE TABLE new_events (event_id int)');
	$got = $node->safe_psql('postgres', "SELECT 'new_events'::regclass::oid");
	last if $got eq $oid;
	note "attempt $attempt: new_events got OID $got";
}
is($got, $oid, 'new_events got the OID of old_events');

# unguarded, the new table takes every row
$node->safe_psql('postgres', 'INSERT INTO new_events VALUES (1)');
is($node->safe_psql('postgres', 'SELECT count(*) FROM new_events'),
	'1', 'the unguarded new table takes a row whose key the old guard had');
$node->safe_psql('postgres', 'TRUNCATE new_events');

# guarded, it starts a guard of its own, with no keys
$node->safe_psql('postgres', "SELECT idem_guard('new_events', 'event_id')");
my $new_guard = $node->safe_psql('postgres',
	"SELECT guard_id FROM idempotency_guards WHERE tbl = $oid");
isnt($new_guard, $old_guard, 'the new table gets a new guard id');
is( $node->safe_psql('postgres',
		"SELECT count(*) FROM idempotency_keys WHERE scope IN ('$old_guard', 'guard:$old_guard')"),
	'0',
	"the old guard's keys are forgotten");
is( $node->safe_psql('postgres',
		'INSERT INTO new_events VALUES (1), (2), (3), (4), (4) RETURNING event_id'),
	"1\n2\n3\n4",
	'the first rows of the new table all go in: no key is inherited');
is( $node->safe_psql('postgres',
		"SELECT count(*) FROM idempotency_keys WHERE scope IN ('$new_guard', 'guard:$new_guard')"),
	'4',
	'the new guard recorded its own four keys');
is($node->safe_psql('postgres', 'SELECT count(*) FROM idempotency_guards'),
	'1', 'one registry row: the new table\'s');

$node->stop;
done_testing();
