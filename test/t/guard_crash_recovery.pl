
# Copyright (c) idempotency contributors

# Crash recovery of the dedup guard: the guard records each inserted row's key
# in the keys table inside the inserting transaction, so an immediate shutdown
# (no checkpoint, WAL replay on restart) in the middle of concurrent COPY bulk
# loads into a guarded partitioned table can never leave an event stored
# twice, an event without its key, or a key without its event.  Every batch a
# client saw committed survives, a rolled-back batch leaves nothing behind, and
# after recovery a reload of present ids adds nothing while new ids go in.
#
# Four psql clients each run a script of transactions, every one of them
# loading a batch of random event ids with two COPY FROM stdin commands.  The
# ids repeat within a COPY, between the two COPYs of a transaction, between
# batches and between concurrent clients (a client then waits for the holder
# of the id and skips the row if the holder commits, inserts it if the holder
# rolls back: every fourth batch rolls back).  The ids of one batch are sorted
# so that concurrent batches claim shared ids in the same order and cannot
# deadlock.  `part` is drawn independently of the id, so copies of one id head
# for different partitions, where no unique index could catch them.
#
# The crash is done twice, the second round on a wider id range so that it
# both repeats ids recovered from the first crash and adds new ones.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time usleep);

my $t0 = time;

my $nclients         = 4;
my $batches          = 250;    # per client and round: far more than a round runs
my $rows_per_batch   = 500;    # ids drawn per batch (with repeats)
my $rollback_every   = 4;      # every 4th batch of a client rolls back
my $poison_per_batch = 5;      # ids that only ever appear in rolled-back batches
my $poison_base      = 10_000_000;

# deterministic batches: a failure can be reproduced
srand(20240515);

my $node = PostgreSQL::Test::Cluster->new('guard_crash');
$node->init;
# Cluster.pm turns fsync off for speed; a crash test wants real durability.
# log_statement = all (Cluster.pm's default) would log every COPY.
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
CREATE TABLE events (
	event_id bigint,
	part int,
	payload text
) PARTITION BY HASH (part);
CREATE TABLE events_p0 PARTITION OF events FOR VALUES WITH (MODULUS 3, REMAINDER 0);
CREATE TABLE events_p1 PARTITION OF events FOR VALUES WITH (MODULUS 3, REMAINDER 1);
CREATE TABLE events_p2 PARTITION OF events FOR VALUES WITH (MODULUS 3, REMAINDER 2);
SELECT idem_guard('events', 'event_id');
});

# the guard's scope: its id as registered for the table, which is also
# its trigger's first argument
my $scope = $node->safe_psql(
	'postgres', q{
SELECT g.guard_id
FROM idempotency_guards g
JOIN pg_trigger t ON t.tgrelid = g.tbl AND t.tgname = 'zz_idempotency_guard'
WHERE g.tbl = 'events'::regclass
  AND split_part(encode(t.tgargs, 'escape'), '\000', 1) = g.guard_id});
like($scope, qr/^[0-9a-f-]{36}$/, "the guard has its own key scope ($scope)");

my $tmpdir = PostgreSQL::Test::Utils::tempdir;

# what psql reports when the server goes away under it
my $crash_errors =
  qr/terminating connection due to|server closed the connection unexpectedly|connection to server.* (was lost|failed)|no connection to the server|could not send|could not receive|This probably means the server terminated abnormally|before or while processing the request|lost synchronization with server|Failed\.$|^$/;

# every batch written to a script, by name "c<client>-r<round>-<n>":
# its sorted ids and whether it commits
my %batch;
my %poison;    # ids that appear in rolled-back batches only

sub copy_block
{
	my ($name, @ids) = @_;
	my $s = "COPY events (event_id, part, payload) FROM stdin;\n";
	$s .= "$_\t" . int(rand(1000)) . "\t$name\n" for @ids;
	return $s . "\\.\n";
}

# One client's script for one round: $batches transactions over ids
# 1..$range.  Each transaction sorts its ids, loads the lower part with a first
# COPY and an overlapping upper part with a second COPY (the overlap repeats
# ids already claimed by the transaction).  A \echo line before each
# transaction lets the client's output tell which transactions committed.
sub client_script
{
	my ($client, $round, $range) = @_;
	my $file = "$tmpdir/client_${client}_round_$round.sql";
	my $s    = "\\set ON_ERROR_STOP 0\n";
	for my $n (1 .. $batches)
	{
		my $name = "c$client-r$round-$n";
		my $rollback = $n % $rollback_every == 0;
		my @ids = map { 1 + int(rand($range)) } 1 .. $rows_per_batch;
		if ($rollback)
		{
			for (1 .. $poison_per_batch)
			{
				my $p = $poison_base + keys %poison;
				$poison{$p} = 1;
				push @ids, $p;
			}
		}
		@ids = sort { $a <=> $b } @ids;
		my $cut     = int(@ids / 2);
		my @first   = @ids[ 0 .. $cut - 1 ];
		my @second  = @ids[ $cut - 20 .. $#ids ];    # 20 ids again
		$batch{$name} = { ids => \@ids, rollback => $rollback };
		$s .=
		    "\\echo batch $name\n"
		  . "BEGIN;\n"
		  . copy_block($name, @first)
		  . copy_block($name, @second)
		  . ($rollback ? "ROLLBACK;\n" : "COMMIT;\n");
	}
	PostgreSQL::Test::Utils::append_to_file($file, $s);
	return $file;
}

sub query
{
	my ($sql) = @_;
	return $node->safe_psql('postgres', $sql);
}

sub count_events
{
	return query('SELECT count(*) FROM events');
}

my %acked;    # batches a client saw COMMIT for

# Start the clients on ids 1..$range, wait until at least $target events exist
# (giving up after 30 s), stop the server in immediate mode while every
# client is still loading, restart it.  Returns the event count after recovery.
sub load_and_crash
{
	my ($round, $range, $target) = @_;
	my $initial = count_events();

	my @files = map { client_script($_, $round, $range) } 1 .. $nclients;
	my @clients;
	for my $c (1 .. $nclients)
	{
		my $file = $files[ $c - 1 ];
		my %cl = (out => '', err => '', name => "client $c");
		$cl{h} = IPC::Run::start(
			[
				'psql', '-X', '-h', $node->host, '-p', $node->port,
				'-d', 'postgres', '-f', $file
			],
			'>', \$cl{out}, '2>', \$cl{err},
			IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
		push @clients, \%cl;
	}

	my $start  = time;
	my $before = 0;
	while (time - $start < 30)
	{
		$before = count_events();
		last if $before >= $target;
		usleep(100_000);
	}
	note "round $round: $before events (started from $initial) after "
	  . sprintf('%.1f', time - $start)
	  . " s of loading";
	cmp_ok($before, '>=', $target,
		"round $round: the clients loaded at least $target events before the crash");

	# every client must still be loading: the crash lands mid-stream
	my $running = 0;
	for my $cl (@clients)
	{
		$cl->{h}->pump_nb;
		$running++ if $cl->{h}->pumpable;
	}
	is($running, $nclients,
		"round $round: all $nclients clients are still loading at the crash");

	# what the crash interrupts: open transactions, some of them waiting for
	# the holder of an id they also load
	my ($inxact, $waiting) = split /\|/, query(
		q{SELECT count(*) FILTER (WHERE backend_xid IS NOT NULL),
		         count(*) FILTER (WHERE wait_event = 'transactionid')
		  FROM pg_stat_activity WHERE query LIKE 'COPY events%'});
	note "round $round: at the crash $inxact client transactions are open, "
	  . "$waiting waiting for another transaction's id";

	$node->stop('immediate');

	# the clients now fail (their connections are gone): that is expected and
	# their exit status is ignored; only make sure they are gone
	my ($ncommitted, $nrolledback, $nstarted, $drawn, $copied, @other_errors) =
	  (0, 0, 0, 0, 0);
	for my $cl (@clients)
	{
		eval { $cl->{h}->finish; };
		if ($@)
		{
			note "$cl->{name} did not exit on its own ($@), killing it";
			$cl->{h}->kill_kill;
		}
		# "batch NAME" is followed by BEGIN, the COPY tags and COMMIT or
		# ROLLBACK; a batch cut by the crash has no final tag
		my ($cur, $cur_copied);
		for my $line (split /\n/, $cl->{out})
		{
			if ($line =~ /^batch (\S+)$/)
			{
				$cur        = $1;
				$cur_copied = 0;
				$nstarted++;
			}
			elsif ($line =~ /^COPY (\d+)$/)
			{
				$cur_copied += $1;
			}
			elsif ($line eq 'COMMIT' && defined $cur)
			{
				$acked{$cur} = 1;
				$ncommitted++;
				# both COPYs of the batch: half of its ids plus 20 twice
				$drawn  += @{ $batch{$cur}{ids} } + 20;
				$copied += $cur_copied;
			}
			elsif ($line eq 'ROLLBACK' && defined $cur)
			{
				$nrolledback++;
			}
		}
		push @other_errors, map { "$cl->{name}: $_" }
		  grep { !/$crash_errors/ } split /\n/, $cl->{err};
	}
	note "round $round: the clients started $nstarted transactions, "
	  . "saw $ncommitted commit and $nrolledback roll back before the crash";
	note "round $round: the committed batches loaded $drawn rows, "
	  . "the guard let $copied of them in (the COPY tags' sum)";
	cmp_ok($ncommitted, '>', 0, "round $round: some batches committed before the crash");
	cmp_ok($copied, '<', $drawn,
		"round $round: the guard skipped duplicates in the committed batches");
	cmp_ok($nrolledback, '>', 0, "round $round: some batches rolled back before the crash");
	# no COPY failed (no deadlock, no guard error): only the crash's errors
	is(join("\n", @other_errors), '',
		"round $round: the clients saw no error but the crash's");

	my $log_offset = -s $node->logfile;
	$node->start;
	ok( $node->log_contains(
			qr/database system was not properly shut down; automatic recovery in progress/,
			$log_offset),
		"round $round: the restart ran crash recovery");

	my $after = count_events();
	note "round $round: $before events seen before the crash, $after after recovery";
	cmp_ok($after, '>=', $before,
		"round $round: every event committed before the crash survived it");
	cmp_ok($after, '>=', $initial + $copied,
		"round $round: every row the clients saw copied and committed survived");

	return $after;
}

# The invariant: events and the guard's keys match one to one, keys compared
# as text; no event id is stored twice.
sub check_invariant
{
	my ($label) = @_;

	my $nevents = count_events();
	my $nkeys =
	  query("SELECT count(*) FROM idempotency_keys WHERE owner::oid = 0 AND scope = '$scope'");
	my $parts = query(
		q{SELECT string_agg(tableoid::regclass || '=' || n, ' ' ORDER BY 1)
		  FROM (SELECT tableoid, count(*) n FROM events GROUP BY 1) s});
	note "$label: $nevents events ($parts), $nkeys guard keys";
	cmp_ok($nevents, '>', 0, "$label: there are events");

	# (a) no event id appears twice, across all partitions
	is( query(
			q{SELECT count(*) FROM (SELECT event_id FROM events GROUP BY 1 HAVING count(*) > 1) d}
		),
		'0',
		"$label: no event id is stored twice");
	is(query('SELECT count(*) FROM events WHERE event_id IS NULL'),
		'0', "$label: no event has a NULL id");

	# (b) events and guard keys match one to one
	is($nkeys, $nevents, "$label: as many guard keys as events");
	is( query(
			qq{SELECT count(*) FROM events e
			   WHERE (SELECT count(*) FROM idempotency_keys k
			          WHERE k.owner::oid = 0 AND k.scope = '$scope' AND k.key = e.event_id::text) <> 1}
		),
		'0',
		"$label: every event has exactly one guard key");
	is( query(
			qq{SELECT count(*) FROM idempotency_keys k
			   WHERE k.owner::oid = 0 AND k.scope = '$scope'
			     AND NOT EXISTS (SELECT 1 FROM events e WHERE e.event_id::text = k.key)}
		),
		'0',
		"$label: every guard key has its event");
	is( query(
			qq{SELECT count(*) FROM idempotency_keys
			   WHERE owner::oid = 0 AND scope <> '$scope'}),
		'0',
		"$label: no keys in any other guard scope");
	is( query(
			qq{SELECT count(*) FROM idempotency_keys
			   WHERE owner::oid = 0 AND scope = '$scope'
			     AND (fingerprint IS NOT NULL OR result IS NOT NULL
			          OR NOT expires_at > now())}),
		'0',
		"$label: guard keys are live and carry no fingerprint or result");

	# every batch a client saw committed is in, whoever inserted each id
	my @acked_ids =
	  sort { $a <=> $b } keys %{ { map { $_ => 1 } map { @{ $batch{$_}{ids} } } keys %acked } };
	is( query(
			"SELECT count(*) FROM unnest('{"
			  . join(',', @acked_ids)
			  . "}'::bigint[]) i WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.event_id = i)"
		),
		'0',
		"$label: all " . scalar(@acked_ids) . " ids of the committed batches are stored");
	# rolled-back batches left neither rows nor keys of their own ids
	is( query(
			qq{SELECT count(*) FROM events WHERE event_id >= $poison_base}),
		'0',
		"$label: no event of a rolled-back batch's own ids");
	is( query(
			qq{SELECT count(*) FROM idempotency_keys
			   WHERE owner::oid = 0 AND scope = '$scope' AND key::bigint >= $poison_base}),
		'0',
		"$label: no guard key of a rolled-back batch's own ids");

	# heap and index agree after WAL replay
	is(query(q{SELECT bt_index_check('idempotency_keys_pkey', true)}),
		'', "$label: amcheck finds the keys index consistent");
	return;
}

# rows of events by payload: the batches whose rows are stored
sub check_payload_batches
{
	my ($label) = @_;
	my @bad = grep { !exists $batch{$_} || $batch{$_}{rollback} }
	  split /\n/, query('SELECT DISTINCT payload FROM events');
	is(join(' ', @bad), '',
		"$label: every stored event was inserted by a batch that committed");
	return;
}

load_and_crash(1, 20_000, 10_000);
check_invariant('after crash 1');
check_payload_batches('after crash 1');

# second round: ids 1..40000, half of them possibly recovered from round 1
my $before2 = count_events();
load_and_crash(2, 40_000, $before2 + 8_000);
check_invariant('after crash 2');
check_payload_batches('after crash 2');

# (c) after recovery a reload of present ids adds nothing and new ids go in.
# One COPY: 200 present ids (each twice), 100 new ids (each twice), sorted.
my @present = split /\n/,
  query('SELECT event_id FROM events ORDER BY event_id LIMIT 200');
my @new = map { 5_000_000 + $_ } 1 .. 100;
my @reload = sort { $a <=> $b } (@present, @present, @new, @new);
my $nevents = count_events();
my $reload_file = "$tmpdir/reload.sql";
PostgreSQL::Test::Utils::append_to_file($reload_file,
	"\\set ON_ERROR_STOP 1\n" . copy_block('reload', @reload));
my ($rout, $rerr) = ('', '');
IPC::Run::run(
	[
		'psql', '-X', '-h', $node->host, '-p', $node->port,
		'-d', 'postgres', '-f', $reload_file
	],
	'>', \$rout, '2>', \$rerr,
	IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
is($rerr, '', 'the reload ran without error');
is($rout, "COPY 100\n",
	'the reload COPY reports only the 100 new ids, once each');
is(count_events(), $nevents + 100, 'the reload added exactly the 100 new events');
is( query(
		q{SELECT count(*), count(DISTINCT event_id), min(event_id), max(event_id)
		  FROM events WHERE payload = 'reload'}),
	'100|100|5000001|5000100',
	'the reloaded rows are the new ids, once each');
check_invariant('after the reload');

note sprintf('loads, crashes and checks took %.1f s', time - $t0);

$node->stop;
done_testing();
