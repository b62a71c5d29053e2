
# idempotency.max_result_size bounds the backend's memory, not only the
# stored result (issue 8, item 6): the statement's output rows are turned
# into JSON as the executor produces them, and the statement fails with
# IK003 as soon as they pass the limit.  Before, the whole output was
# materialised first (5M rows took a backend from 17 MB to 533 MB before
# IK003 at the 1 MB limit).
#
# The backend's peak resident memory (VmHWM of /proc/self/status, read by
# the backend itself) is compared before and after a SELECT and an
# INSERT ... RETURNING of 1M rows under the 1 MB limit.  Holding the rows
# takes about 170 MB (200 MB for the INSERT); the margin allowed is 48 MB.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

plan skip_all => 'needs /proc/self/status' unless -r '/proc/self/status';

my $rows      = 1_000_000;
my $margin_kb = 48 * 1024;

my $node = PostgreSQL::Test::Cluster->new('result_size_memory');
$node->init;
$node->append_conf('postgresql.conf', "log_statement = none\n");
$node->start;

$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION idempotency;
	CREATE TABLE sink (g int, pad text);
	-- the backend's peak resident memory so far, in kB
	CREATE FUNCTION peak_kb() RETURNS bigint LANGUAGE sql AS $$
		SELECT substring(pg_read_file('/proc/self/status')
						 FROM 'VmHWM:\s*(\d+) kB')::bigint
	$$;
});

# One session: the peak before, the call (which must fail with IK003), the
# peak after.
sub peak_growth
{
	my ($label, $sql) = @_;
	my ($out, $err) = ('', '');
	$node->psql(
		'postgres', qq{
\\set VERBOSITY verbose
SET idempotency.max_result_size = '1MB';
SELECT 'before ' || peak_kb();
SELECT idem_execute('$label', \$q\$$sql\$q\$);
SELECT 'after ' || peak_kb();
},
		stdout        => \$out,
		stderr        => \$err,
		on_error_stop => 0);
	like($err, qr/ERROR:\s+IK003: result of the statement under idempotency key "$label" is too large/,
		"$label: IK003");
	my ($before) = $out =~ /^before (\d+)$/m;
	my ($after)  = $out =~ /^after (\d+)$/m;
	ok(defined $before && defined $after, "$label: peak memory measured")
	  or diag("stdout: $out\nstderr: $err");
	note "$label: peak resident memory ${before} kB before, ${after} kB after";
	return defined $before && defined $after ? $after - $before : 1e12;
}

my $growth = peak_growth('big-select',
	"SELECT g, 'some padding' AS pad FROM generate_series(1, $rows) g");
cmp_ok($growth, '<', $margin_kb,
	"a SELECT of $rows rows over the limit grows the backend's peak by less than 48 MB (grew $growth kB)");

$growth = peak_growth('big-insert',
	"INSERT INTO sink SELECT g, 'some padding' FROM generate_series(1, $rows) g RETURNING *");
cmp_ok($growth, '<', $margin_kb,
	"an INSERT ... RETURNING of $rows rows over the limit grows the backend's peak by less than 48 MB (grew $growth kB)");

is($node->safe_psql('postgres', 'SELECT count(*) FROM sink'),
	'0', 'the failed INSERT left no row');
is($node->safe_psql('postgres', 'SELECT count(*) FROM idempotency_keys'),
	'0', 'no key was stored');

# under the limit the same statements still run and store their rows
$node->safe_psql('postgres',
	"SELECT idem_execute('small', 'INSERT INTO sink SELECT g, ''p'' FROM generate_series(1, 1000) g RETURNING g')");
is( $node->safe_psql('postgres',
		"SELECT jsonb_array_length(result) || ' ' || command FROM idempotency_keys WHERE key = 'small'"),
	'1000 INSERT 1000',
	'a result under the limit keeps all its rows');

$node->stop;
done_testing();
