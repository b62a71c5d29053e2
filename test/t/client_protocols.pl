
# idem_execute works the same through the simple, extended and prepared
# protocols (SPEC: "It works from any client"): each mode runs the same
# retried stream of payments, and every key ends with exactly one payment
# whose id the stored result names.  An untyped parameter in the "any"
# position fails as SPEC says, and a cast one works.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('client_protocols');
$node->init;
$node->start;

$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION idempotency;
	CREATE TABLE payments (id bigserial PRIMARY KEY, key text NOT NULL,
						   mode text NOT NULL, amount numeric NOT NULL);
});

foreach my $mode ('simple', 'extended', 'prepared')
{
	# 50 keys, 400 calls: most calls are retries that must replay
	$node->pgbench(
		"--no-vacuum --client=4 --jobs=2 --transactions=100 --protocol=$mode",
		0,
		[qr{processed: 400/400}],
		[qr{^$}],
		"pgbench --protocol=$mode runs idem_execute without errors",
		{
			"idem_$mode" => qq{
\\set k random(1, 50)
SELECT idem_execute('$mode-' || :k,
	'INSERT INTO payments(key, mode, amount) VALUES (\$1, \$2, \$3) RETURNING id',
	'$mode-' || :k, '$mode'::text, (:k * 1.50)::numeric);
}
		});

	my $keys = $node->safe_psql('postgres',
		"SELECT count(*) FROM idempotency_keys WHERE key LIKE '$mode-%'");
	my $payments = $node->safe_psql('postgres',
		"SELECT count(*) FROM payments WHERE mode = '$mode'");
	cmp_ok($keys, '>', 0, "$mode: keys were recorded");
	is($payments, $keys, "$mode: one payment per key");
	is( $node->safe_psql(
			'postgres', qq{
			SELECT count(*) FROM payments p
			JOIN idempotency_keys k ON k.key = p.key
			WHERE p.mode = '$mode'
			  AND (k.result->0->>'id')::bigint = p.id
			  AND k.command = 'INSERT 1'}),
		$keys,
		"$mode: each stored result names its own payment");
}

# An untyped parameter in the VARIADIC "any" position cannot be typed by
# the server; the cast form works.  pgbench sends :vars as untyped
# parameters in extended mode.
$node->pgbench(
	"--no-vacuum --client=1 --transactions=1 --protocol=extended",
	2,
	[qr{}],
	[qr{could not determine data type of parameter \$1}],
	"an untyped parameter in the \"any\" position is rejected",
	{
		'idem_untyped' => q{
\set v 7
SELECT idem_execute('untyped', 'SELECT $1 AS v', :v);
}
	});
is($node->safe_psql('postgres',
		"SELECT count(*) FROM idempotency_keys WHERE key = 'untyped'"),
	'0', 'the rejected call recorded nothing');

$node->pgbench(
	"--no-vacuum --client=1 --transactions=2 --protocol=extended",
	0,
	[qr{processed: 2/2}],
	[qr{^$}],
	"a cast parameter in the \"any\" position works",
	{
		'idem_cast' => q{
\set v 7
SELECT idem_execute('cast', 'SELECT $1 AS v', :v::int);
}
	});
is( $node->safe_psql(
		'postgres', "SELECT idem_lookup('cast')"),
	'{"rows": [{"v": 7}], "command": "SELECT", "row_count": 1}',
	'the cast parameter was bound in its own type');

$node->stop;
done_testing();
