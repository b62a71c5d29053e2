
# Anonymous row types do not grow the backend, call after call.
#
# Arguments: record arguments (ROW(...) of changing arity) (issue 8, item 5).  Each arity is a new record type; the output
# function hashing a record argument caches per-type data in its FmgrInfo,
# which must not live (and pile up) in the backend's long-lived type cache.
# Before, every call left about 200 bytes behind.
#
# One session makes 2,000 warm-up calls, then 20,000 more, with arities
# cycling over 1..30; the backend's memory contexts (pg_backend_memory_contexts)
# must grow by less than 1 MB over the 20,000 (a 200-byte leak per call is
# 4 MB).
#
# Results: output rows of a shape never seen before (here a new column
# alias in each call).  A row type registered to turn rows into JSON stays
# registered for the backend's life (about 500 bytes each); 20,000 calls
# must again grow the backend by less than 1 MB.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('record_argument_memory');
$node->init;
$node->append_conf('postgresql.conf', "log_statement = none\n");
$node->start;

$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION idempotency;
	-- n calls of idem_execute with a ROW(...) argument of arity 1..30
	CREATE PROCEDURE record_calls(first int, n int) LANGUAGE plpgsql AS $$
	BEGIN
		FOR i IN first .. first + n - 1 LOOP
			EXECUTE format('SELECT idem_execute(%L, %L, ROW(%s))',
						   'rec-' || i, 'SELECT 1 AS one',
						   (SELECT string_agg(g::text, ', ')
							FROM generate_series(1, 1 + i % 30) g));
			IF i % 1000 = 0 THEN
				COMMIT;
			END IF;
		END LOOP;
	END
	$$;
	-- n calls whose output column has a new name each time
	CREATE PROCEDURE alias_calls(first int, n int) LANGUAGE plpgsql AS $$
	BEGIN
		FOR i IN first .. first + n - 1 LOOP
			PERFORM idem_execute('alias-' || i, format('SELECT %s AS %I', i, 'col_' || i));
			IF i % 1000 = 0 THEN
				COMMIT;
			END IF;
		END LOOP;
	END
	$$;
	CREATE FUNCTION context_bytes() RETURNS bigint LANGUAGE sql AS $$
		SELECT sum(total_bytes)::bigint FROM pg_backend_memory_contexts
	$$;
});

my $out = $node->safe_psql(
	'postgres', q{
	CALL record_calls(1, 2000);
	SELECT 'before ' || context_bytes();
	CALL record_calls(2001, 20000);
	SELECT 'after ' || context_bytes();
	SELECT 'keys ' || count(*) FROM idempotency_keys;
});
my ($before) = $out =~ /^before (\d+)$/m;
my ($after)  = $out =~ /^after (\d+)$/m;
like($out, qr/^keys 22000$/m, 'every call ran and stored its key');
ok(defined $before && defined $after, 'memory contexts measured')
  or diag($out);
my $growth = ($after // 1e12) - ($before // 0);
note "memory contexts: $before bytes before, $after bytes after 20,000 calls";
cmp_ok($growth, '<', 1024 * 1024,
	"20,000 calls with record arguments of changing arity grow the backend's memory contexts by less than 1 MB (grew $growth bytes)");

$out = $node->safe_psql(
	'postgres', q{
	CALL alias_calls(1, 2000);
	SELECT 'before ' || context_bytes();
	CALL alias_calls(2001, 20000);
	SELECT 'after ' || context_bytes();
	SELECT 'result ' || (result -> 0)::text FROM idempotency_keys WHERE key = 'alias-7';
});
($before) = $out =~ /^before (\d+)$/m;
($after)  = $out =~ /^after (\d+)$/m;
like($out, qr/^result \{"col_7": 7\}$/m, 'each call stored its row under its own column name');
$growth = ($after // 1e12) - ($before // 0);
note "memory contexts: $before bytes before, $after bytes after 20,000 output shapes";
cmp_ok($growth, '<', 1024 * 1024,
	"20,000 calls whose output rows have new column names grow the backend's memory contexts by less than 1 MB (grew $growth bytes)");

# the record arguments still count in the request: another row is IK001
my ($ret, $stdout, $stderr) = $node->psql('postgres',
	"SELECT idem_execute('rec-1', 'SELECT 1 AS one', ROW(1, 3))");
like($stderr, qr/was used with a different request/,
	'a different record argument under the same key is a different request');
is( $node->safe_psql('postgres',
		"SELECT idem_execute('rec-1', 'SELECT 1 AS one', ROW(1, 2)) ->> 'replayed'"),
	'true',
	'the same record argument replays');

$node->stop;
done_testing();
