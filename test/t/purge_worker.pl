
# Copyright (c) idempotency contributors

# The purge background worker (shared_preload_libraries = 'idempotency'):
# expired keys disappear on their own in every database with the extension;
# it keeps purging while writers run; idempotency.purge_interval = 0 turns
# it off and a reload turns it on again; it survives DROP EXTENSION and DROP
# DATABASE in a database it visits, an ERROR in a database's purge, and the
# launcher being terminated (it is restarted, the server goes on); it stops
# with the server.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time usleep);

my $node = PostgreSQL::Test::Cluster->new('purge');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'idempotency'
idempotency.purge_interval = '500ms'
log_statement = none
max_connections = 20
});
$node->start;

# the launcher's PID, once it is up
sub launcher_pid
{
	my $pid;
	$node->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'idempotency purge launcher'})
	  or return undef;
	return $node->safe_psql('postgres',
		q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'idempotency purge launcher'});
}

# n keys that live one second, in database $db
sub short_keys
{
	my ($db, $prefix, $n) = @_;
	$node->safe_psql($db,
		"SET idempotency.ttl = 1; SELECT count(idem_execute('$prefix-' || g, 'SELECT 1')) FROM generate_series(1, $n) g"
	);
	return;
}

sub key_count
{
	my ($db) = @_;
	return $node->safe_psql($db, 'SELECT count(*) FROM idempotency_keys');
}

# wait until database $db has no keys left (the worker purged them)
sub purged_away
{
	my ($db) = @_;
	return $node->poll_query_until($db, 'SELECT count(*) = 0 FROM idempotency_keys');
}

my $pid1 = launcher_pid();
ok($pid1, 'the launcher runs with the preload');

# 1. keys with a 1-second TTL disappear on their own, in every database with
# the extension, in several batches (more keys than one batch)
$node->safe_psql('postgres', 'CREATE EXTENSION idempotency');
$node->safe_psql('postgres', 'CREATE DATABASE second');
$node->safe_psql('second', 'CREATE EXTENSION idempotency');
$node->safe_psql('postgres', 'CREATE DATABASE bystander');    # no extension
$node->safe_psql($_, 'SELECT idem_stats_reset()') for qw(postgres second);
short_keys('postgres', 'a', 1200);
short_keys('second', 'b', 700);
# a key that stays live is never purged
$node->safe_psql('postgres', "SELECT idem_execute('long-lived', 'SELECT 1')");
$node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM idempotency_keys})
  or diag 'keys left: ' . key_count('postgres');
is(key_count('postgres'), '1', 'postgres: the 1200 expired keys were purged, the live one stays');
ok(purged_away('second'), 'second: the 700 expired keys were purged');
is($node->safe_psql('postgres', 'SELECT purged FROM idempotency_stats'),
	'1200', 'postgres: purged counts the 1200 keys');
is($node->safe_psql('second', 'SELECT purged FROM idempotency_stats'),
	'700', 'second: purged counts its 700 keys');

# what it did is logged at DEBUG1
$node->append_conf('postgresql.conf', 'log_min_messages = debug1');
$node->reload;
my $log_offset = -s $node->logfile;
short_keys('postgres', 'c', 10);
ok(purged_away_but_one(), 'keys written after the reload are purged too');
ok( $node->wait_for_log(
		qr/idempotency purged 10 expired keys in database "postgres" in 1 batches/,
		$log_offset),
	'the purge is logged at DEBUG1');
$node->append_conf('postgresql.conf', 'log_min_messages = warning');
$node->reload;

sub purged_away_but_one
{
	return $node->poll_query_until('postgres',
		'SELECT count(*) = 1 FROM idempotency_keys');
}

# 2. purge_interval = 0 turns it off; setting it again turns it back on
$node->append_conf('postgresql.conf', 'idempotency.purge_interval = 0');
$node->reload;
short_keys('postgres', 'd', 50);
sleep 3;
is(key_count('postgres'), '51', 'purge_interval = 0: expired keys stay');
$node->append_conf('postgresql.conf', q{idempotency.purge_interval = '500ms'});
$node->reload;
ok(purged_away_but_one(), 'purge_interval set again (reload): they are purged');

# 3. writers at full speed, keys living one second: the worker keeps up
my $tmpdir = PostgreSQL::Test::Utils::tempdir;
my $script = "$tmpdir/writer.sql";
PostgreSQL::Test::Utils::append_to_file($script,
	"SELECT idem_execute('w-' || :client_id || '-' || random(), 'SELECT 1');\n");
my $purged0 = $node->safe_psql('postgres', 'SELECT purged FROM idempotency_stats');
my ($out, $err) = ('', '');
{
	local $ENV{PGOPTIONS} = '-c idempotency.ttl=1';
	my @cmd = (
		'pgbench', '-n', '-c', '2', '-j', '2', '-T', '6', '-f', $script,
		'-h', $node->host, '-p', $node->port, 'postgres');
	IPC::Run::run(\@cmd, '>', \$out, '2>', \$err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
}
my ($written) = $out =~ /number of transactions actually processed: (\d+)/;
ok($written && $written > 100, "pgbench wrote keys (" . ($written // 0) . " calls)")
  or diag "pgbench: $out\n$err";
unlike($err, qr/error/i, 'no writer call failed while the worker purged');
my $purged_during = $node->safe_psql('postgres', 'SELECT purged FROM idempotency_stats') - $purged0;
note "written $written, purged while writing $purged_during";
cmp_ok($purged_during, '>', 0, 'the worker purged while the writers ran');
ok(purged_away_but_one(), 'after the writers stop every expired key is purged');
is($node->safe_psql('postgres', 'SELECT purged FROM idempotency_stats') - $purged0,
	$written, 'purged counts every key the writers wrote');

# 4. DROP EXTENSION in a visited database: the worker skips it from then on
$node->safe_psql('second', 'DROP EXTENSION idempotency');
sleep 2;
short_keys('postgres', 'e', 20);
ok(purged_away_but_one(), 'after DROP EXTENSION elsewhere the worker still purges');
# and CREATE EXTENSION again: it is visited again
$node->safe_psql('second', 'CREATE EXTENSION idempotency');
short_keys('second', 'f', 20);
ok(purged_away('second'), 'the extension created again is purged again');

# 5. DROP DATABASE of a database with the extension and expired keys, again
# and again while the worker visits it: each drop succeeds (the worker
# leaves when a drop waits for it)
my $drops_ok = 0;
for my $i (1 .. 5)
{
	$node->safe_psql('postgres', "CREATE DATABASE doomed_$i");
	$node->safe_psql("doomed_$i", 'CREATE EXTENSION idempotency');
	short_keys("doomed_$i", 'g', 3000);
	usleep(1_100_000);    # expired: the worker has work in it
	my ($rc, $o, $e) = $node->psql('postgres', "DROP DATABASE doomed_$i");
	$drops_ok++ if $rc == 0;
	diag "DROP DATABASE doomed_$i: $e" if $rc != 0;
}
is($drops_ok, 5, 'DROP DATABASE with the worker running succeeds every time');
short_keys('postgres', 'h', 20);
ok(purged_away_but_one(), 'after the drops the worker still purges');

# 6. an ERROR in one database's purge (a trigger refuses the delete) ends
# that database's worker, not the server; other databases are still purged
$node->safe_psql(
	'second', q{
CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN RAISE EXCEPTION 'refusing to purge'; END$$;
CREATE TRIGGER refuse BEFORE DELETE ON idempotency_keys
  FOR EACH ROW EXECUTE FUNCTION refuse();
});
$log_offset = -s $node->logfile;
short_keys('second', 'i', 10);
short_keys('postgres', 'j', 10);
ok( $node->wait_for_log(qr/refusing to purge/, $log_offset),
	'the purge in the database with the trigger fails with its ERROR');
ok(purged_away_but_one(), 'other databases are still purged');
is(key_count('second'), '10', 'the failing database keeps its keys');
is(launcher_pid(), $pid1, 'the launcher is the same process: a database\'s failure did not touch it');
unlike(
	slurp_file($node->logfile, $log_offset),
	qr/terminated by signal|server process .* was terminated|all server processes terminated/,
	'no crash: the server did not reinitialize');
$node->safe_psql('second', 'DROP TRIGGER refuse ON idempotency_keys');
ok(purged_away('second'), 'without the trigger the keys are purged');

# 7. the launcher terminated by its PID: it is restarted, the server goes on
$log_offset = -s $node->logfile;
is($node->safe_psql('postgres', "SELECT pg_terminate_backend($pid1)"), 't',
	'the launcher is terminated');
my $pid2;
my $t0 = time;
while (time - $t0 < 60)
{
	$pid2 = $node->safe_psql('postgres',
		q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'idempotency purge launcher'});
	last if $pid2 && $pid2 ne $pid1;
	usleep(200_000);
}
ok($pid2 && $pid2 ne $pid1, 'a new launcher was started');
note sprintf('restarted after %.1f s', time - $t0);
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server kept running');
unlike(
	slurp_file($node->logfile, $log_offset),
	qr/terminating any other active server processes|all server processes terminated/,
	'terminating the launcher did not restart the server');
short_keys('postgres', 'k', 20);
ok(purged_away_but_one(), 'the new launcher purges');

# 8. it stops with the server: a fast shutdown is clean
$log_offset = -s $node->logfile;
$node->stop('fast');
like(slurp_file($node->logfile, $log_offset), qr/database system is shut down/,
	'the server shut down with the worker running');

done_testing();
