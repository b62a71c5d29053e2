
# Copyright (c) idempotency contributors

# idempotency_stats holds one shared-memory entry per counted database, at
# most idempotency.stats_max_databases (here 2).  A dropped database gives
# its entry back: a database created afterwards is counted, from zero, with
# a fresh stats_reset, even one that reuses the dropped database's OID, and
# even in a session that was open while every entry was taken.  While every
# entry is held by a live database, a new database's counters read NULL and
# the rest of the view still answers.  A DROP DATABASE that fails keeps the
# database's entry.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('stats_capacity');
$node->init;
# the purge worker off: it would count (and so claim an entry) in every
# database with the extension
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'idempotency'
idempotency.purge_interval = 0
idempotency.stats_max_databases = 2
});
$node->start;

is($node->safe_psql('postgres', 'SHOW idempotency.stats_max_databases'),
	'2', 'idempotency.stats_max_databases is read from postgresql.conf');
my ($rc, $out, $err) = $node->psql('postgres',
	"\\set VERBOSITY verbose\nSET idempotency.stats_max_databases = 5");
like($err, qr/55P02/, 'it cannot be changed without a restart (55P02)');

sub create_db
{
	my ($db, $options) = @_;
	$node->safe_psql('postgres', "CREATE DATABASE $db " . ($options // ''));
	$node->safe_psql($db, 'CREATE EXTENSION idempotency');
	return $node->safe_psql('postgres',
		"SELECT oid FROM pg_database WHERE datname = '$db'");
}

# n new keys, each executed once
sub execute
{
	my ($db, $n, $prefix) = @_;
	$node->safe_psql($db,
		"SELECT count(idem_execute('$prefix-' || g, 'SELECT 1')) FROM generate_series(1, $n) g"
	);
}

# executed|replayed|stats_reset, 'null' for NULL
sub stats
{
	my ($db) = @_;
	return $node->safe_psql($db,
		q{SELECT coalesce(executed::text, 'null') || '|' || coalesce(replayed::text, 'null') || '|' || coalesce(stats_reset::text, 'null') FROM idempotency_stats}
	);
}

sub counters
{
	my ($db) = @_;
	my ($executed, $replayed) = split /\|/, stats($db);
	return "$executed|$replayed";
}

# two databases take the two entries
my $oid_a = create_db('a');
create_db('b');
execute('a', 3, 'k');
execute('b', 2, 'k');
execute('b', 1, 'k');
is(counters('a'), '3|0', 'database a is counted: executed 3');
is(counters('b'), '2|1', 'database b is counted: executed 2, replayed 1');
my $b_stats = stats('b');

# a third database finds every entry taken by a live database
my $oid_c = create_db('c');
my $log_offset = -s $node->logfile;
execute('c', 5, 'k');
is( $node->safe_psql(
		'c', q{
SELECT num_nulls(executed, replayed, mismatched, in_flight, too_large, waits,
                 wait_time_ms, guard_inserted, guard_skipped, purged, stats_reset),
       live_keys, expired_keys, table_bytes > 0
FROM idempotency_stats}),
	'11|5|0|t',
	'with every entry held by a live database, a new database\'s counters and stats_reset read NULL, its key counts do not'
);
is($node->safe_psql('c', 'SELECT idem_stats_reset()'),
	'', 'idem_stats_reset in the uncounted database does nothing');
ok( $node->log_contains(
		qr/idempotency statistics are full: database $oid_c is not counted/,
		$log_offset),
	'the server log says which database is not counted');
is(counters('a'), '3|0', 'database a keeps its counters');
is(stats('b'), $b_stats, 'database b keeps its counters');

# a session of c, open while everything is full
my $c_session = $node->background_psql('c');
$c_session->query_safe("SELECT idem_execute('s-0', 'SELECT 1')");

# a DROP DATABASE that fails (another session is connected to b) keeps b's
# entry
my $b_session = $node->background_psql('b');
$b_session->query_safe('SELECT 1');
($rc, $out, $err) = $node->psql('postgres', 'DROP DATABASE b');
like($err, qr/being accessed by other users/, 'DROP DATABASE b fails while b is in use');
$b_session->quit;
execute('b', 1, 'after-failed-drop');
my ($b_executed, $b_replayed, $b_reset) = split /\|/, stats('b');
is("$b_executed|$b_replayed", '3|1',
	'after a failed DROP DATABASE, b still counts on its entry');
is($b_reset, (split /\|/, $b_stats)[2], '... with its stats_reset unchanged');
$b_stats = stats('b');
is(counters('c'), 'null|null', 'c is still not counted');

# dropping a gives its entry back: c takes it, from zero
my $dropped_at = $node->safe_psql('postgres', 'SELECT clock_timestamp()');
$node->safe_psql('postgres', 'DROP DATABASE a');
$c_session->query_safe(
	"SELECT idem_execute('s-' || g, 'SELECT 1') FROM generate_series(1, 2) g");
$c_session->quit;
execute('c', 4, 'after-drop');
execute('c', 1, 'after-drop');
my ($c_executed, $c_replayed, $c_reset) = split /\|/, stats('c');
is("$c_executed|$c_replayed", '6|1',
	'after a is dropped, c is counted: exactly the 6 new keys and 1 replay since, in a session open before the drop and in new ones'
);
is($node->safe_psql('postgres', "SELECT '$c_reset'::timestamptz > '$dropped_at'"),
	't', 'c\'s stats_reset is when it took the entry, after the drop');
is(stats('b'), $b_stats, 'b\'s counters and stats_reset are intact');

# everything is full again: a fourth database is not counted
create_db('d');
execute('d', 2, 'k');
is(counters('d'), 'null|null', 'full again: d is not counted');

# c is dropped and a database reusing its OID (as after an OID wraparound)
# takes the entry: it starts from zero, not from c's counters
$dropped_at = $node->safe_psql('postgres', 'SELECT clock_timestamp()');
$node->safe_psql('postgres', 'DROP DATABASE c');
is(create_db('c2', "OID = $oid_c"), $oid_c, 'database c2 has c\'s old OID');
execute('c2', 1, 'k');
my ($c2_executed, $c2_replayed, $c2_reset) = split /\|/, stats('c2');
is("$c2_executed|$c2_replayed", '1|0',
	'a database reusing a dropped database\'s OID counts from zero');
is($node->safe_psql('postgres', "SELECT '$c2_reset'::timestamptz > '$dropped_at'"),
	't', '... with a fresh stats_reset');
is(counters('d'), 'null|null', 'd is still not counted (c2 took the entry)');
is(stats('b'), $b_stats, 'b is still intact');

# a database dropped without ever having been counted frees nothing
$node->safe_psql('postgres', 'DROP DATABASE d');
create_db('e');
execute('e', 1, 'k');
is(counters('e'), 'null|null', 'dropping an uncounted database frees no entry');
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server is up');

# without the preload the setting is still known once the library loads
$node->append_conf('postgresql.conf', q{shared_preload_libraries = ''});
$node->restart;
($rc, $out, $err) = $node->psql('b',
	"LOAD 'idempotency'; SHOW idempotency.stats_max_databases");
is("$rc|$out|$err", '0|2|',
	'without the preload the setting shows, with no warning');

$node->stop;
done_testing();
