
# The per-backend statement cache is bounded in bytes, not only in entries
# (issue 8, item 7), and a statement too large to be worth keeping is not
# cached at all.  Before, twenty 5 MB statement texts kept over 300 MB
# resident in the backend.
#
# One session runs twenty different 5 MB statements (a short SELECT padded
# with a comment) under twenty keys; the backend's memory contexts
# (pg_backend_memory_contexts) must grow by less than 24 MB.  Then 300
# different ordinary statements go through the cache (more than its 256
# entries): cached plans included, the backend grows by a few MB at most.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('statement_cache_memory');
$node->init;
$node->append_conf('postgresql.conf', "log_statement = none\n");
$node->start;

$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION idempotency;
	CREATE FUNCTION context_bytes() RETURNS bigint LANGUAGE sql AS $$
		SELECT sum(total_bytes)::bigint FROM pg_backend_memory_contexts
	$$;
});

my $out = $node->safe_psql(
	'postgres', q{
	SELECT idem_execute('warm-up', 'SELECT 0 AS n') IS NOT NULL;
	SELECT 'before ' || context_bytes();
	SELECT count(idem_execute('big-' || i,
							  'SELECT ' || i || ' AS n /* ' || repeat('x', 5 * 1024 * 1024) || ' */'))
	FROM generate_series(1, 20) i;
	SELECT 'after ' || context_bytes();
	SELECT 'rows ' || string_agg(result ->> 0, ',' ORDER BY key)
	FROM idempotency_keys WHERE key IN ('big-1', 'big-20');
	SELECT count(idem_execute('small-' || i, 'SELECT ' || i || ' AS n'))
	FROM generate_series(1, 300) i;
	SELECT 'cache ' || context_bytes();
});
my ($before) = $out =~ /^before (\d+)$/m;
my ($after)  = $out =~ /^after (\d+)$/m;
my ($cache)  = $out =~ /^cache (\d+)$/m;
ok(defined $before && defined $after && defined $cache,
	'memory contexts measured')
  or diag($out);
like($out, qr/^rows \{"n": 1\},\{"n": 20\}$/m,
	'the large statements ran and stored their results');
my $growth = ($after // 1e12) - ($before // 0);
note "memory contexts: $before bytes before, $after bytes after twenty 5 MB statements";
cmp_ok($growth, '<', 24 * 1024 * 1024,
	"twenty 5 MB statements grow the backend's memory contexts by less than 24 MB (grew $growth bytes)");
my $cache_growth = ($cache // 1e12) - ($after // 0);
note "memory contexts after 300 small statements: $cache bytes";
cmp_ok($cache_growth, '<', 8 * 1024 * 1024,
	"300 small statements, their cached plans included, grow the backend by less than 8 MB (grew $cache_growth bytes)");

# a large statement runs again (and replays) as usual
is( $node->safe_psql(
		'postgres', q{
	SELECT idem_execute('big-1', 'SELECT 1 AS n /* ' || repeat('x', 5 * 1024 * 1024) || ' */') ->> 'replayed'}
	),
	'true',
	'a large statement under its key replays');

$node->stop;
done_testing();
