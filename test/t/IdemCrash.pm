# Copyright (c) idempotency contributors

# What the crash-recovery TAP tests share: a node that takes durability
# seriously, and a pgbench stream crashed mid-run.
#
#   my $node = IdemCrash::durable_node('name');   # initialized and started
#   my ($before, $processed) = IdemCrash::pgbench_crash($node, round => 1,
#       script => $file, target => 300, count => sub { ... });
#   IdemCrash::restart_after_crash($node, $round);  # after stop('immediate')
#
# pgbench_crash runs the pgbench script on 4 clients until count->() reaches
# target (giving up after 20 s), stops the server in immediate mode while
# pgbench still runs, and restarts it.  It checks (Test::More) that the target
# was reached, that pgbench was still running at the crash, that pgbench saw
# no error other than the crash's, and that the restart ran crash recovery.
# It returns count->() at the crash and the transactions pgbench completed.

package IdemCrash;

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time usleep);

# what pgbench reports when the server goes away under it
my $crash_errors =
  qr/perhaps the backend died while processing|Run was aborted|server closed the connection unexpectedly|terminating connection due to|no connection to the server|connection to server .* failed/;

sub durable_node
{
	my ($name) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	# Cluster.pm turns fsync off for speed; a crash test wants real
	# durability.  log_statement = all (Cluster.pm's default) would log every
	# statement of the stream.
	$node->append_conf(
		'postgresql.conf', q{
fsync = on
synchronous_commit = on
max_connections = 20
log_statement = none
});
	$node->start;
	return $node;
}

sub pgbench_crash
{
	my ($node, %arg) = @_;
	my $round = $arg{round};

	my ($out, $err) = ('', '');
	my @cmd = (
		'pgbench', '-n', '-c', '4', '-j', '2', '-T', '60',
		'-f', $arg{script}, '-h', $node->host, '-p', $node->port, 'postgres');
	my $h = IPC::Run::start(\@cmd, '>', \$out, '2>', \$err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));

	my $start  = time;
	my $before = 0;
	while (time - $start < 20)
	{
		$before = $arg{count}->();
		last if $before >= $arg{target};
		usleep(100_000);
	}
	note "round $round: $before after "
	  . sprintf('%.1f', time - $start)
	  . " s of streaming";
	cmp_ok($before, '>=', $arg{target},
		"round $round: the stream reached $arg{target} before the crash");

	# pgbench must still be running: the crash lands in the middle of the stream
	$h->pump_nb;
	ok($h->pumpable, "round $round: pgbench is still running at the crash")
	  or diag "pgbench stdout:\n$out\npgbench stderr:\n$err";

	$node->stop('immediate');

	# pgbench now fails (its connections are gone): its exit status is
	# ignored; only make sure it is gone
	eval { $h->finish; };
	if ($@)
	{
		note "pgbench did not exit on its own ($@), killing it";
		$h->kill_kill;
	}
	my ($processed) = $out =~ /number of transactions actually processed: (\d+)/;
	note "round $round: pgbench processed "
	  . ($processed // '?')
	  . " transactions before the crash";
	my @other_errors =
	  grep { !/$crash_errors/ } grep { /error|abort/i } split /\n/, $err;
	is(join("\n", @other_errors), '',
		"round $round: no call of the stream failed before the crash");

	restart_after_crash($node, $round);
	return ($before, $processed // 0);
}

# Start the crashed node again and check that it ran crash recovery.
sub restart_after_crash
{
	my ($node, $round) = @_;
	my $log_offset = -s $node->logfile;
	$node->start;
	ok( $node->log_contains(
			qr/database system was not properly shut down; automatic recovery in progress/,
			$log_offset),
		"round $round: the restart ran crash recovery");
	return;
}

1;
