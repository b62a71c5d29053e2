
# Copyright (c) idempotency contributors

# Crash recovery: the key and the write it protects commit in one transaction,
# so an immediate shutdown (no checkpoint, WAL replay on restart) in the middle
# of a stream of concurrent idem_execute calls can never leave a key without
# its payment, a payment without its key, a payment made twice, or a stored
# result that points at the wrong row.  After recovery a retried request
# replays and a new one runs.
#
# The crash is done twice: pgbench streams calls (keys repeat, so some calls
# replay and some wait for a concurrent holder of the same key), the server is
# stopped in immediate mode while pgbench is still running, restarted, and the
# invariant is checked on the recovered data.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time usleep);

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
# Cluster.pm turns fsync off for speed; a crash test wants real durability.
# log_statement = all (Cluster.pm's default) would log every pgbench call.
$node->append_conf(
	'postgresql.conf', q{
fsync = on
synchronous_commit = on
max_connections = 20
log_statement = none
});
$node->start;

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION idempotency;
CREATE EXTENSION amcheck;
CREATE TABLE payments (
	id bigserial PRIMARY KEY,
	key text,
	customer text,
	amount numeric
);
});

my $sql_text =
  'INSERT INTO payments(key, customer, amount) VALUES ($1, $2, $3) RETURNING id';

# The pgbench script: one idem_execute per transaction, the key drawn at
# random from a small range so that keys repeat (a retry replays; two clients
# with the same key at once make the second one wait for the first).
my $tmpdir = PostgreSQL::Test::Utils::tempdir;

# what pgbench reports when the server goes away under it; any other error
# means a call of the stream failed
my $crash_errors = qr/perhaps the backend died while processing|Run was aborted|server closed the connection unexpectedly|terminating connection due to|no connection to the server|connection to server .* failed/;

sub pgbench_script
{
	my ($range) = @_;
	my $file = "$tmpdir/idem_stream_$range.sql";
	PostgreSQL::Test::Utils::append_to_file(
		$file, "\\set k random(1, $range)\n"
		  . "SELECT idem_execute('key-' || :k, '$sql_text', 'key-' || :k, 'cus', 1.00::numeric);\n"
	);
	return $file;
}

sub count_payments
{
	return $node->safe_psql('postgres', 'SELECT count(*) FROM payments');
}

# Run the stream until at least $target payments exist (giving up after 20 s),
# then stop the server in immediate mode while pgbench is still running, and
# restart it.  Returns the payment count after recovery.
sub stream_and_crash
{
	my ($round, $range, $target) = @_;
	my $initial = count_payments();

	my $script = pgbench_script($range);
	my ($out, $err) = ('', '');
	my @cmd = (
		'pgbench', '-n', '-c', '4', '-j', '2', '-T', '60',
		'-f', $script, '-h', $node->host, '-p', $node->port, 'postgres');
	my $h = IPC::Run::start(\@cmd, '>', \$out, '2>', \$err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));

	my $start  = time;
	my $before = 0;
	while (time - $start < 20)
	{
		$before = count_payments();
		last if $before >= $target;
		usleep(100_000);
	}
	note "round $round: $before payments after "
	  . sprintf('%.1f', time - $start)
	  . " s of streaming";
	cmp_ok($before, '>=', $target,
		"round $round: the stream made at least $target payments before the crash");

	# pgbench must still be running: the crash lands in the middle of the stream
	$h->pump_nb;
	ok($h->pumpable, "round $round: pgbench is still running at the crash")
	  or diag "pgbench stdout:\n$out\npgbench stderr:\n$err";

	$node->stop('immediate');

	# pgbench now fails (its connections are gone): that is expected, its exit
	# status is ignored; only make sure it is gone.
	eval { $h->finish; };
	if ($@)
	{
		note "pgbench did not exit on its own ($@), killing it";
		$h->kill_kill;
	}
	my ($processed) = $out =~ /number of transactions actually processed: (\d+)/;
	my $aborted = () = $err =~ /aborted/g;
	note "round $round: pgbench processed "
	  . ($processed // '?')
	  . " transactions before the crash, $aborted client abort message(s)";
	print "round $round: pgbench stderr:\n$err";
	# the only errors pgbench saw are the crash's: no call of the stream failed
	my @other_errors =
	  grep { !/$crash_errors/ } grep { /error|abort/i } split /\n/, $err;
	is(join("\n", @other_errors), '',
		"round $round: no call of the stream failed before the crash");

	# more calls succeeded than payments were made: some calls replayed
	cmp_ok($processed // 0, '>', $before - $initial,
		"round $round: some calls of the stream replayed (more calls than payments)");

	my $log_offset = -s $node->logfile;
	$node->start;
	ok( $node->log_contains(
			qr/database system was not properly shut down; automatic recovery in progress/,
			$log_offset),
		"round $round: the restart ran crash recovery");

	my $after = count_payments();
	note "round $round: $before payments seen before the crash, $after after recovery";
	cmp_ok($after, '>=', $before,
		"round $round: every payment committed before the crash survived it");

	return $after;
}

# The invariant: keys of role postgres and payments match one to one, and each
# stored result names the payment row of its key.
sub check_invariant
{
	my ($label) = @_;

	my $nkeys = $node->safe_psql('postgres',
		q{SELECT count(*) FROM idempotency_keys WHERE owner = 'postgres'::regrole});
	my $npay = count_payments();
	note "$label: $nkeys keys, $npay payments";
	cmp_ok($npay, '>', 0, "$label: there are payments");
	is($nkeys, $npay, "$label: as many keys as payments");

	# (a) every key has exactly one payment
	is( $node->safe_psql(
			'postgres', q{
SELECT count(*) FROM idempotency_keys k
WHERE k.owner = 'postgres'::regrole
  AND (SELECT count(*) FROM payments p WHERE p.key COLLATE "C" = k.key) <> 1}),
		'0',
		"$label: every key has exactly one payment");

	# (b) every payment has its key
	is( $node->safe_psql(
			'postgres', q{
SELECT count(*) FROM payments p
WHERE NOT EXISTS (SELECT 1 FROM idempotency_keys k
                  WHERE k.owner = 'postgres'::regrole AND k.key = p.key COLLATE "C")}),
		'0',
		"$label: every payment has its key");

	# (c) no payment was made twice
	is( $node->safe_psql(
			'postgres', q{
SELECT count(*) FROM (SELECT key FROM payments GROUP BY key HAVING count(*) > 1) d}),
		'0',
		"$label: no key was paid twice");

	# (d) every stored result is the INSERT's and names its payment row
	is( $node->safe_psql(
			'postgres', q{
SELECT count(*) FROM idempotency_keys k
WHERE k.owner = 'postgres'::regrole
  AND (k.result->>'command' = 'INSERT'
       AND (k.result->>'row_count')::int = 1
       AND jsonb_array_length(k.result->'rows') = 1
       AND NOT k.result ? 'replayed'
       AND k.fingerprint IS NOT NULL) IS NOT TRUE}),
		'0',
		"$label: every stored result is a one-row INSERT result");
	is( $node->safe_psql(
			'postgres', q{
SELECT count(*) FROM idempotency_keys k
JOIN payments p ON p.key COLLATE "C" = k.key
WHERE k.owner = 'postgres'::regrole
  AND k.result->'rows'->0->>'id' IS DISTINCT FROM p.id::text}),
		'0',
		"$label: every stored result's rows[0].id is its payment's id");

	# idem_lookup returns what is stored
	is( $node->safe_psql(
			'postgres', q{
SELECT count(*) FROM idempotency_keys k
WHERE k.owner = 'postgres'::regrole AND idem_lookup(k.key) IS DISTINCT FROM k.result}),
		'0',
		"$label: idem_lookup returns the stored result of every key");

	# heap and indexes agree after WAL replay
	is( $node->safe_psql(
			'postgres', q{
SELECT bt_index_check('idempotency_keys_pkey', true), bt_index_check('payments_pkey', true)}),
		'|',
		"$label: amcheck finds the keys and payments indexes consistent");
	return;
}

my $t0 = time;

stream_and_crash(1, 2000, 500);
check_invariant('after crash 1');

# second round: a wider key range, so calls both replay keys recovered from
# the first crash and make new ones
my $before2 = count_payments();
stream_and_crash(2, 4000, $before2 + 700);
check_invariant('after crash 2');

# (e) after recovery a retry of an existing key replays and adds nothing ...
my ($key, $id) = split /\|/,
  $node->safe_psql(
	'postgres', q{
SELECT key, result->'rows'->0->>'id' FROM idempotency_keys
WHERE owner = 'postgres'::regrole ORDER BY created_at, key LIMIT 1});
ok(defined $id && $id =~ /^\d+$/, "a recovered key ($key) stored a payment id");
my $npay = count_payments();
is( $node->safe_psql(
		'postgres', qq{
SELECT r->>'replayed', r->'rows'->0->>'id'
FROM idem_execute('$key', '$sql_text', '$key'::text, 'cus', 1.00::numeric) r}),
	"true|$id",
	'a retry of a recovered key replays the stored payment id');
is(count_payments(), $npay, 'the retry of a recovered key made no payment');

# ... and a new key runs
is( $node->safe_psql(
		'postgres', qq{
SELECT r->>'replayed', r->>'command', r->>'row_count', jsonb_array_length(r->'rows')
FROM idem_execute('key-new-after-crash', '$sql_text', 'key-new-after-crash'::text, 'cus', 1.00::numeric) r}),
	'false|INSERT|1|1',
	'a new key after recovery runs the statement');
is(count_payments(), $npay + 1, 'the new key made exactly one payment');
check_invariant('after the retries');

note sprintf('streams, crashes and checks took %.1f s', time - $t0);

$node->stop;
done_testing();
