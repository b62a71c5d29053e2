# Copyright (c) idempotency contributors

# Crash recovery of request keys: idem_begin, the work and idem_finish commit
# in one transaction, so an immediate shutdown (no checkpoint, WAL replay on
# restart) in the middle of a stream of begin / three writes / finish
# transactions can never leave a key without all three of its effects and
# its response, nor an effect without its key.  After recovery every request
# is retried: keys that committed return their stored response and do
# nothing; the others run, once.
#
# pgbench streams the requests (keys repeat, so some return a stored
# response and some wait for a concurrent holder of the same key; one in
# twenty rolls back after its work, as a failed request does).  The server
# is stopped in immediate mode while pgbench is running, twice, and the
# invariant is checked on the recovered data each time.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;
use IdemCrash;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $node = IdemCrash::durable_node('request_crash');

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION idempotency;
CREATE EXTENSION amcheck;
CREATE TABLE orders (id bigserial PRIMARY KEY, key text NOT NULL);
CREATE TABLE stock_moves (key text NOT NULL, order_id bigint NOT NULL);
CREATE TABLE ledger (key text NOT NULL, order_id bigint NOT NULL, amount numeric NOT NULL);
});

my $range  = 1500;
my $tmpdir = PostgreSQL::Test::Utils::tempdir;

# One request per pgbench transaction: idem_begin; if it claimed the key,
# three writes and idem_finish (or, one time in twenty, a rollback after the
# writes); COMMIT.
my $script = "$tmpdir/request_stream.sql";
PostgreSQL::Test::Utils::append_to_file(
	$script, qq{\\set k random(1, $range)
\\set fail random(1, 20)
BEGIN;
SELECT (idem_begin('req-' || :k, jsonb_build_object('k', :k)) IS NULL)::int AS claimed \\gset
\\if :claimed
INSERT INTO orders(key) VALUES ('req-' || :k) RETURNING id AS order_id \\gset
INSERT INTO stock_moves VALUES ('req-' || :k, :order_id);
INSERT INTO ledger VALUES ('req-' || :k, :order_id, 1.00);
\\if :fail = 1
ROLLBACK;
\\else
SELECT idem_finish('req-' || :k, jsonb_build_object('status', 201, 'order_id', :order_id));
COMMIT;
\\endif
\\else
COMMIT;
\\endif
});

sub count_keys
{
	return $node->safe_psql('postgres',
		q{SELECT count(*) FROM idempotency_keys WHERE key LIKE 'req-%'});
}

# Stream requests until at least $target keys exist, crash, restart: every
# key committed before the crash survives it.
sub stream_and_crash
{
	my ($round, $target) = @_;
	my ($before) = IdemCrash::pgbench_crash(
		$node,
		round  => $round,
		script => $script,
		target => $target,
		count  => \&count_keys);
	cmp_ok(count_keys(), '>=', $before,
		"round $round: every key committed before the crash survived it");
	return;
}

# The invariant: each key has exactly one row in each of the three tables
# and a response naming its order; each row of the three tables has its
# key.
sub check_invariant
{
	my ($label) = @_;

	my $nkeys = count_keys();
	note "$label: $nkeys keys";
	cmp_ok($nkeys, '>', 0, "$label: there are keys");

	is( $node->safe_psql(
			'postgres', q{
SELECT count(*) FROM idempotency_keys k
WHERE k.key LIKE 'req-%'
  AND ((SELECT count(*) FROM orders o WHERE o.key COLLATE "C" = k.key) <> 1
    OR (SELECT count(*) FROM stock_moves s WHERE s.key COLLATE "C" = k.key) <> 1
    OR (SELECT count(*) FROM ledger l WHERE l.key COLLATE "C" = k.key) <> 1)}),
		'0',
		"$label: every key has exactly one order, one stock move and one ledger row");

	is( $node->safe_psql(
			'postgres', q{
SELECT count(*) FROM (
	SELECT key FROM orders UNION ALL SELECT key FROM stock_moves
	UNION ALL SELECT key FROM ledger) e
WHERE NOT EXISTS (SELECT 1 FROM idempotency_keys k WHERE k.key = e.key COLLATE "C")}),
		'0',
		"$label: no effect exists without its key");

	is( $node->safe_psql(
			'postgres', q{
SELECT count(*) FROM orders o
JOIN stock_moves s USING (key) JOIN ledger l USING (key)
WHERE s.order_id <> o.id OR l.order_id <> o.id}),
		'0',
		"$label: the three effects of a key belong to one request");

	is( $node->safe_psql(
			'postgres', q{
SELECT count(*) FROM idempotency_keys k
LEFT JOIN orders o ON o.key COLLATE "C" = k.key
WHERE k.key LIKE 'req-%'
  AND (k.result IS DISTINCT FROM jsonb_build_object('status', 201, 'order_id', o.id)
       OR get_byte(k.fingerprint, 0) <> 3)}),
		'0',
		"$label: every key has its response, naming its order");

	is( $node->safe_psql(
			'postgres', q{
SELECT count(*) FROM idempotency_keys k
WHERE k.key LIKE 'req-%' AND idem_lookup(k.key) IS DISTINCT FROM k.result}),
		'0',
		"$label: idem_lookup returns every key's response");

	is( $node->safe_psql(
			'postgres', q{
SELECT bt_index_check('idempotency_keys_pkey', true), bt_index_check('orders_pkey', true)}),
		'|',
		"$label: amcheck finds the keys and orders indexes consistent");
	return;
}

my $t0 = time;

stream_and_crash(1, 300);
check_invariant('after crash 1');

stream_and_crash(2, count_keys() + 300);
check_invariant('after crash 2');

# Retry every request, each in its own transaction, as a client would after
# the outage: a key that committed returns its stored response (checked
# against the table) and does nothing; any other runs now.
my $retry = "$tmpdir/retry_all.sql";
my $sql   = "\\set ON_ERROR_STOP 1\n";
for my $k (1 .. $range)
{
	# psql unsets a variable that \gset gets NULL for: :{?response} says
	# whether idem_begin returned a stored response or claimed the key
	$sql .= qq{BEGIN;
SELECT idem_begin('req-$k', '{"k": $k}') AS response \\gset
\\if :{?response}
SELECT count(*) = 1 AS response_matches FROM orders
WHERE key = 'req-$k' AND jsonb_build_object('status', 201, 'order_id', id) = :'response'::jsonb \\gset
\\if :response_matches
\\else
\\echo MISMATCH req-$k
\\endif
\\else
INSERT INTO orders(key) VALUES ('req-$k') RETURNING id AS order_id \\gset
INSERT INTO stock_moves VALUES ('req-$k', :order_id);
INSERT INTO ledger VALUES ('req-$k', :order_id, 1.00);
SELECT idem_finish('req-$k', jsonb_build_object('status', 201, 'order_id', :order_id)) IS NOT NULL AS finished \\gset
\\endif
COMMIT;
};
}
PostgreSQL::Test::Utils::append_to_file($retry, $sql);

my $keys_before  = count_keys();
my $order_before = $node->safe_psql('postgres', 'SELECT count(*) FROM orders');
my ($rc, $stdout, $stderr) = $node->psql('postgres', undef,
	extra_params => [ '-q', '-f', $retry ]);
is($rc, 0, 'every retry ran without an error') or diag $stderr;
unlike($stdout, qr/MISMATCH/,
	'every retry of a committed key returned its stored response');
is(count_keys(), $range, "after the retries all $range keys exist");
is( $node->safe_psql('postgres', 'SELECT count(*) FROM orders'),
	$order_before + $range - $keys_before,
	'the retries ran exactly the requests that had not committed');
check_invariant('after the retries');

# a second round of retries changes nothing
($rc, $stdout, $stderr) = $node->psql('postgres', undef,
	extra_params => [ '-q', '-f', $retry ]);
is($rc, 0, 'a second round of retries ran without an error') or diag $stderr;
is( $node->safe_psql('postgres', 'SELECT count(*) FROM orders'),
	$range, 'a second round of retries made no order');

note sprintf('streams, crashes and checks took %.1f s', time - $t0);

$node->stop;
done_testing();
