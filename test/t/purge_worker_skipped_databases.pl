# Copyright (c) idempotency contributors

# Databases the purge worker cannot purge are skipped at DEBUG1, instead of
# an ERROR in the server log (and a worker exiting with exit code 1) on
# every pass:
#   - the extension still at 1.0 (the server got the 1.1 library, ALTER
#     EXTENSION UPDATE has not run there yet);
#   - a database made read-only with default_transaction_read_only.
# Once updated, or writable again, each is purged as any other.
# And a database whose keys table another session has locked (CREATE
# INDEX, REINDEX, VACUUM FULL, LOCK TABLE) is left for the next pass
# instead of waiting, which held up every other database's purge.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('purge_skipped');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'idempotency'
idempotency.purge_interval = '200ms'
log_min_messages = debug1
});
$node->start;

my $log_offset = -s $node->logfile;
$node->safe_psql('postgres', 'CREATE DATABASE old10');
$node->safe_psql('old10', q{CREATE EXTENSION idempotency VERSION '1.0'});
$node->safe_psql('postgres', 'CREATE DATABASE frozen');
$node->safe_psql('frozen', 'CREATE EXTENSION idempotency');
$node->safe_psql('frozen',
	q{SET idempotency.ttl = 1; SELECT count(idem_execute('k-' || g, 'SELECT 1')) FROM generate_series(1, 10) g});
$node->safe_psql('postgres',
	'ALTER DATABASE frozen SET default_transaction_read_only = on');

# skipped visits to database $db since the start
sub visits
{
	my ($db) = @_;
	my $log = slurp_file($node->logfile, $log_offset);
	my @v = ($log =~ /skips database "$db"/g);
	return scalar @v;
}
# two skipped passes over both (at most 60 s; the keys live 1 s)
my $deadline = time() + 60;
sleep(1)
  while (visits('old10') < 2 || visits('frozen') < 2) && time() < $deadline;
my $log = slurp_file($node->logfile, $log_offset);
like(
	$log,
	qr/idempotency purge skips database "old10": the extension is at version 1\.0/,
	'the worker skips a database at 1.0');
like(
	$log,
	qr/idempotency purge skips database "frozen": its transactions are read-only/,
	'the worker skips a read-only database');
unlike($log, qr/ERROR/, 'no ERROR from the worker in either');
unlike($log, qr/purge worker.*exited with exit code 1/,
	'no purge worker exits with an error');

# updated, or writable again, each is purged as any other
$node->safe_psql('old10', 'ALTER EXTENSION idempotency UPDATE');
$node->safe_psql('old10',
	q{SET idempotency.ttl = 1; SELECT count(idem_execute('k-' || g, 'SELECT 1')) FROM generate_series(1, 10) g});
ok($node->poll_query_until('old10', 'SELECT count(*) = 0 FROM idempotency_keys'),
	'after the update the worker purges its expired keys');
is($node->safe_psql('frozen', 'SELECT count(*) FROM idempotency_keys'),
	'10', 'the read-only database kept its keys');
$node->safe_psql('postgres',
	'ALTER DATABASE frozen RESET default_transaction_read_only');
ok($node->poll_query_until('frozen', 'SELECT count(*) = 0 FROM idempotency_keys'),
	'writable again, it is purged');

# a keys table locked in one database: the others are purged meanwhile
$node->safe_psql('postgres', 'CREATE DATABASE busy');
$node->safe_psql('busy', 'CREATE EXTENSION idempotency');
$node->safe_psql('postgres', 'CREATE DATABASE other');
$node->safe_psql('other', 'CREATE EXTENSION idempotency');
# (busy's keys outlive the moment its table is locked)
for my $db (qw(busy other))
{
	my $ttl = $db eq 'busy' ? 5 : 1;
	$node->safe_psql($db,
		qq{SET idempotency.ttl = $ttl; SELECT count(idem_execute('k-' || g, 'SELECT 1')) FROM generate_series(1, 10) g}
	);
}
my $locker = $node->background_psql('busy');
$locker->query_safe('BEGIN; LOCK TABLE idempotency_keys IN SHARE MODE');
$deadline = time() + 30;
sleep(1)
  while $node->safe_psql('other', 'SELECT count(*) FROM idempotency_keys') ne
  '0'
  && time() < $deadline;
is($node->safe_psql('other', 'SELECT count(*) FROM idempotency_keys'),
	'0', 'another database is purged while one keys table is locked');
like(
	slurp_file($node->logfile, $log_offset),
	qr/idempotency purge skips database "busy": its keys table is locked/,
	'the locked one is skipped');
is($node->safe_psql('busy', 'SELECT count(*) FROM idempotency_keys'),
	'10', 'the locked keys table keeps its keys');
$locker->query_safe('COMMIT');
$locker->quit;
ok($node->poll_query_until('busy', 'SELECT count(*) = 0 FROM idempotency_keys'),
	'unlocked, it is purged');

$node->stop;
done_testing();
