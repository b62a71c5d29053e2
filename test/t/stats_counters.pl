
# Copyright (c) idempotency contributors

# The idempotency_stats counters move by exactly the number of calls of each
# outcome: statements run, replays, IK001, IK002, IK003, waits for a
# concurrent holder (and how long they took), rows the guard let in and
# skipped, keys purged.  Counters are per database, idem_stats_reset() zeroes
# them, and without shared_preload_libraries the view still answers, with
# the counters NULL.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $node = PostgreSQL::Test::Cluster->new('stats');
$node->init;
# the purge worker off: every purged key here is counted by an explicit call
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'idempotency'
idempotency.purge_interval = 0
log_statement = none
});
$node->start;

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION idempotency;
CREATE TABLE payments (id serial PRIMARY KEY, amount int);
CREATE TABLE events (event_id text, payload text);
SELECT idem_guard('events', 'event_id');
});

my @counters = qw(executed replayed mismatched in_flight too_large waits
  wait_time_ms guard_inserted guard_skipped purged);

# the counters of the current database, as a hash
sub counters
{
	my ($db) = @_;
	my $row = $node->safe_psql($db // 'postgres',
		'SELECT ' . join(', ', @counters) . ' FROM idempotency_stats');
	my %h;
	@h{@counters} = split /\|/, $row;
	return \%h;
}

# what moved between two readings, as "name=delta ..." of the non-zero ones
# (wait_time_ms is checked on its own)
sub moved
{
	my ($before, $after) = @_;
	return join ' ',
	  map { "$_=" . ($after->{$_} - $before->{$_}) }
	  grep { $_ ne 'wait_time_ms' && $after->{$_} != $before->{$_} } @counters;
}

my $pay = q{'INSERT INTO payments(amount) VALUES ($1) RETURNING id'};

$node->safe_psql('postgres', 'SELECT idem_stats_reset()');
my $zero = counters();
is(join(',', map { $zero->{$_} } @counters),
	join(',', (0) x @counters), 'after idem_stats_reset every counter is 0');

# three new keys: executed 3
my $c0 = counters();
$node->safe_psql('postgres',
	"SELECT idem_execute('pay-' || g, $pay, g) FROM generate_series(1, 3) g");
my $c1 = counters();
is(moved($c0, $c1), 'executed=3', 'three new keys: executed moves by 3');

# two retries: replayed 2
$node->safe_psql('postgres',
	"SELECT idem_execute('pay-' || g, $pay, g) FROM generate_series(1, 2) g");
my $c2 = counters();
is(moved($c1, $c2), 'replayed=2', 'two retries: replayed moves by 2');

# a retry with a different request: IK001, mismatched 1
my ($rc, $out, $err) = $node->psql('postgres',
	"SELECT idem_execute('pay-1', $pay, 999)");
like($err, qr/different request/, 'a different request under a used key fails');
my $c3 = counters();
is(moved($c2, $c3), 'mismatched=1', 'IK001: mismatched moves by 1');

# a result larger than max_result_size: IK003, too_large 1, nothing stored
($rc, $out, $err) = $node->psql('postgres',
	"SET idempotency.max_result_size = 10; SELECT idem_execute('big-1', 'SELECT repeat(''x'', 100) AS x')"
);
like($err, qr/too large/, 'a result over max_result_size fails');
my $c4 = counters();
is(moved($c3, $c4), 'too_large=1', 'IK003: too_large moves by 1');

# another transaction holds a key: with wait off, IK002 (in_flight 1); with
# wait on, one wait for the holder, then a replay of its result
my $holder = $node->background_psql('postgres');
$holder->query_safe("BEGIN; SELECT idem_execute('held-1', $pay, 7)");
($rc, $out, $err) = $node->psql('postgres',
	"SET idempotency.wait = off; SELECT idem_execute('held-1', $pay, 7)");
like($err, qr/held by another transaction/, 'wait off: the held key fails at once');
my $c5 = counters();
is(moved($c4, $c5), 'executed=1 in_flight=1',
	'IK002: in_flight moves by 1 (and the holder\'s call counts as executed, committed or not)');

my $waiter = $node->background_psql('postgres');
$waiter->query_until(qr/waiting/,
	"\\echo waiting\nSELECT idem_execute('held-1', $pay, 7) ->> 'replayed' AS replayed;\n");
# the waiter is blocked on the holder's transaction
$node->poll_query_until('postgres',
	q{SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%held-1%'}
) or die 'the waiter did not block';
my $held_ms = 400;
usleep($held_ms * 1000);
$holder->query_safe('COMMIT');
$holder->quit;
# the waiter got the holder's result as a replay
like($waiter->query_safe('SELECT 1'), qr/^true/, 'the waiter replayed the holder\'s result');
$waiter->quit;
my $c6 = counters();
is(moved($c5, $c6), 'replayed=1 waits=1',
	'a wait for a holder: waits moves by 1, and the waiter\'s replay counts');
cmp_ok($c6->{wait_time_ms} - $c5->{wait_time_ms},
	'>=', $held_ms - 50, "wait_time_ms counts the time the waiter was blocked (>= ${held_ms} ms)");
cmp_ok($c6->{wait_time_ms} - $c5->{wait_time_ms},
	'<', 30_000, 'wait_time_ms is in milliseconds');

# idem_begin / idem_finish: a finished key is executed once, a retry
# replays, another request under the key is IK001, an oversized response
# IK003
my $c6r = counters();
$node->safe_psql('postgres',
	q{BEGIN; SELECT idem_begin('req-1', '{"a": 1}'); SELECT idem_finish('req-1', '{"status": 201}'); COMMIT;}
);
my $c6s = counters();
is(moved($c6r, $c6s), 'executed=1', 'idem_begin + idem_finish: executed moves by 1');
is($node->safe_psql('postgres', q{SELECT idem_begin('req-1', '{"a": 1}')}),
	'{"status": 201}', 'a retry of the request gets the stored response');
my $c6t = counters();
is(moved($c6s, $c6t), 'replayed=1', 'idem_begin of a finished key: replayed moves by 1');
($rc, $out, $err) = $node->psql('postgres', q{SELECT idem_begin('req-1', '{"a": 2}')});
like($err, qr/different request/, 'idem_begin with another request fails');
($rc, $out, $err) = $node->psql('postgres',
	q{SET idempotency.max_result_size = 10; BEGIN; SELECT idem_begin('req-2'); SELECT idem_finish('req-2', '{"body": "far too long for ten bytes"}');}
);
like($err, qr/too large/, 'idem_finish with an oversized response fails');
my $c6u = counters();
is(moved($c6t, $c6u), 'mismatched=1 too_large=1',
	'idem_begin IK001 and idem_finish IK003 are counted');
$c6 = $c6u;

# the guard: five rows, two of them duplicates (one in the same statement,
# one of an earlier statement)
$node->safe_psql('postgres',
	q{INSERT INTO events VALUES ('e1', 'a'), ('e2', 'b'), ('e1', 'dup'), ('e3', 'c')});
$node->safe_psql('postgres', q{INSERT INTO events VALUES ('e2', 'dup again')});
my $c7 = counters();
is(moved($c6, $c7), 'guard_inserted=3 guard_skipped=2',
	'guard: inserted moves by the rows let in, skipped by the duplicates dropped');
is($node->safe_psql('postgres', 'SELECT count(*) FROM events'), '3',
	'the table has the rows the guard let in');

# the guard waits for a concurrent holder of the same key too, then skips
my $gholder = $node->background_psql('postgres');
$gholder->query_safe(q{BEGIN; INSERT INTO events VALUES ('e-held', 'first')});
my $gwaiter = $node->background_psql('postgres');
$gwaiter->query_until(qr/waiting/,
	"\\echo waiting\nINSERT INTO events VALUES ('e-held', 'second');\n");
$node->poll_query_until('postgres',
	q{SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%e-held%second%'}
) or die 'the guard waiter did not block';
$gholder->query_safe('COMMIT');
$gholder->quit;
$gwaiter->query_safe('SELECT 1');
$gwaiter->quit;
is($node->safe_psql('postgres', q{SELECT string_agg(payload, ',') FROM events WHERE event_id = 'e-held'}),
	'first', 'the waiting duplicate was skipped');
my $c7g = counters();
is(moved($c7, $c7g), 'waits=1 guard_inserted=1 guard_skipped=1',
	'a guarded insert waiting for a holder: waits 1, the holder inserted 1, the waiter skipped 1');
$c7 = $c7g;

# purge: four keys with a 1-second TTL expire, idem_purge deletes them
$node->safe_psql('postgres',
	"SET idempotency.ttl = 1; SELECT idem_execute('short-' || g, 'SELECT 1') FROM generate_series(1, 4) g"
);
my $c8 = counters();
is(moved($c7, $c8), 'executed=4', 'four short keys: executed moves by 4');
sleep 2;
is($node->safe_psql('postgres', 'SELECT expired_keys FROM idempotency_stats'),
	'4', 'expired_keys counts the four expired keys');
is($node->safe_psql('postgres', 'SELECT idem_purge()'), '4', 'idem_purge deletes them');
my $c9 = counters();
is(moved($c8, $c9), 'purged=4', 'purged moves by the keys deleted');

# the view's other columns
my $live = $node->safe_psql('postgres',
	q{SELECT count(*) FROM idempotency_keys WHERE expires_at > now()});
is( $node->safe_psql(
		'postgres',
		q{SELECT live_keys, expired_keys, table_bytes = pg_total_relation_size('idempotency_keys'),
				 stats_reset <= now() FROM idempotency_stats}),
	"$live|0|t|t",
	'live_keys, expired_keys and table_bytes describe the keys table');

# an ordinary role reads the view (all keys counted, not only its own) and
# may not reset the counters
$node->safe_psql('postgres', 'CREATE ROLE regress_idem_stats LOGIN');
is( $node->safe_psql(
		'postgres', 'SELECT executed > 0, live_keys FROM idempotency_stats',
		extra_params => [ '-U', 'regress_idem_stats' ]),
	"t|$live",
	'an ordinary role reads the counters and the whole table\'s key count');
($rc, $out, $err) = $node->psql('postgres', 'SELECT idem_stats_reset()',
	extra_params => [ '-U', 'regress_idem_stats' ]);
like($err, qr/permission denied/, 'an ordinary role may not reset the counters');

# counters are per database
$node->safe_psql('postgres', 'CREATE DATABASE other');
$node->safe_psql('other',
	"CREATE EXTENSION idempotency; SELECT idem_execute('o-1', 'SELECT 1'), idem_execute('o-1', 'SELECT 1')"
);
is(moved($c9, counters()), '', 'calls in another database do not move this one\'s counters');
is(moved($zero, counters('other')), 'executed=1 replayed=1',
	'the other database counts its own calls');

# reset: zero, and stats_reset moves forward
my $reset_before = $node->safe_psql('postgres', 'SELECT stats_reset FROM idempotency_stats');
$node->safe_psql('postgres', 'SELECT idem_stats_reset()');
is(moved($zero, counters()), '', 'idem_stats_reset zeroes the counters');
is( $node->safe_psql(
		'postgres', "SELECT stats_reset > '$reset_before' FROM idempotency_stats"),
	't', 'stats_reset is the time of the reset');
is(moved($zero, counters('other')), 'executed=1 replayed=1',
	'idem_stats_reset leaves other databases alone');

# a keys table over 10 MB is counted from a sample of its pages: the
# estimates land near the true counts
$node->safe_psql('postgres',
	"SELECT count(idem_execute('many-' || g, 'SELECT 1')) FROM generate_series(1, 110000) g");
$node->safe_psql('postgres',
	q{UPDATE idempotency_keys SET expires_at = now() - interval '1 hour' WHERE key LIKE 'many-%' AND right(key, 1) IN ('1', '2', '3')});
my ($true_live, $true_expired, $pages) = split /\|/,
  $node->safe_psql('postgres',
	q{SELECT count(*) FILTER (WHERE expires_at > now()), count(*) FILTER (WHERE expires_at <= now()),
			 pg_relation_size('idempotency_keys') / 8192 FROM idempotency_keys});
cmp_ok($pages, '>', 1280, "the keys table is over 10 MB ($pages pages)");
my ($est_live, $est_expired) = split /\|/,
  $node->safe_psql('postgres', 'SELECT live_keys, expired_keys FROM idempotency_stats');
note "live $true_live, estimated $est_live; expired $true_expired, estimated $est_expired";
cmp_ok(abs($est_live - $true_live), '<', 0.2 * $true_live,
	'live_keys of a large table is estimated within 20%');
cmp_ok(abs($est_expired - $true_expired), '<', 0.2 * $true_expired,
	'expired_keys of a large table is estimated within 20%');
isnt("$est_live|$est_expired", "$true_live|$true_expired",
	'... from a sample, not a full count');

# without the preload: the view answers, the counters are NULL, counting and
# resetting are no-ops
$node->append_conf('postgresql.conf', q{shared_preload_libraries = ''});
$node->restart;
$node->safe_psql('postgres', "SELECT idem_execute('pay-1', $pay, 1)");
is( $node->safe_psql(
		'postgres', q{
SELECT num_nulls(executed, replayed, mismatched, in_flight, too_large, waits,
                 wait_time_ms, guard_inserted, guard_skipped, purged, stats_reset),
       live_keys > 0, table_bytes > 0
FROM idempotency_stats}),
	'11|t|t',
	'without the preload the counters and stats_reset are NULL, the key counts are not');
is($node->safe_psql('postgres', 'SELECT idem_stats_reset()'), '',
	'without the preload idem_stats_reset does nothing');
like(
	$node->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'idempotency%'}),
	qr/^0$/, 'without the preload there is no purge worker');

$node->stop;
done_testing();
