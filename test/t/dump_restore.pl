
# Copyright (c) idempotency contributors

# Live keys survive pg_dump and pg_restore (SPEC: the keys table is registered
# with pg_extension_config_dump, filtered on expires_at > now()): in the
# restored database the live keys are there with identical results, an
# expired key is not, a retried request replays instead of running again (for
# the superuser and for an ordinary role, each with its own keys), and the
# table keeps its row level security and privileges.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('dump');
$node->init;
$node->start;

my $tmpdir = PostgreSQL::Test::Utils::tempdir;

# an ordinary role, cluster-wide, so it exists in the restored database too
$node->safe_psql('postgres', 'CREATE ROLE regress_app LOGIN');
$node->safe_psql('postgres', 'CREATE DATABASE src');

$node->safe_psql(
	'src', q{
CREATE EXTENSION idempotency;
CREATE TABLE payments (
	id bigserial PRIMARY KEY,
	key text,
	customer text,
	amount numeric
);
GRANT SELECT, INSERT ON payments TO regress_app;
GRANT USAGE ON SEQUENCE payments_id_seq TO regress_app;
});

my $ins =
  'INSERT INTO payments(key, customer, amount) VALUES ($1, $2, $3) RETURNING id';

# one call: returns "replayed|id"
sub pay
{
	my ($db, $user, $key, $customer, $amount) = @_;
	return $node->safe_psql(
		$db, qq{
SELECT r->>'replayed', r->'rows'->0->>'id'
FROM idem_execute('$key', '$ins', '$key'::text, '$customer'::text, ${amount}::numeric) r},
		extra_params => [ '-U', $user ]);
}

sub count_payments
{
	my ($db) = @_;
	return $node->safe_psql($db, 'SELECT count(*) FROM payments');
}

# superuser keys
my %id;
for my $k (qw(pay-1 pay-2 pay-3))
{
	my ($replayed, $id) = split /\|/, pay('src', 'postgres', $k, 'cus_su', '10.00');
	is($replayed, 'false', "src: postgres key $k runs");
	$id{"postgres:$k"} = $id;
}
# a key whose statement is a SELECT with no argument and several rows
is( $node->safe_psql(
		'src', q{
SELECT idem_execute('report-1', 'SELECT g AS n FROM generate_series(1, 3) g')->>'row_count'}
	),
	'3',
	'src: postgres key report-1 (a SELECT) runs');

# ordinary role keys, one of them with the same key string as a superuser key
for my $k (qw(pay-1 app-9))
{
	my ($replayed, $id) =
	  split /\|/, pay('src', 'regress_app', $k, 'cus_app', '20.00');
	is($replayed, 'false', "src: regress_app key $k runs");
	$id{"regress_app:$k"} = $id;
}
isnt($id{'regress_app:pay-1'}, $id{'postgres:pay-1'},
	'src: the same key string in two roles made two payments');

# pay-3 expires (as superuser, who may write the table directly)
$node->safe_psql(
	'src', q{
UPDATE idempotency_keys SET expires_at = now() - interval '1 hour'
WHERE owner = 'postgres'::regrole AND key = 'pay-3'});

# snapshot of the live keys, every column
my $live_query = q{
SELECT owner, scope, key, encode(fingerprint, 'hex'), result, created_at, expires_at
FROM idempotency_keys WHERE expires_at > now() ORDER BY owner::text, scope, key};
my $live_src = $node->safe_psql('src', $live_query);
is( $node->safe_psql(
		'src', q{SELECT string_agg(owner || '/' || key, ',' ORDER BY owner::text, key)
FROM idempotency_keys WHERE expires_at > now()}),
	'postgres/pay-1,postgres/pay-2,postgres/report-1,regress_app/app-9,regress_app/pay-1',
	'src: five live keys before the dump');
my $payments_src = count_payments('src');
is($payments_src, '5', 'src: five payments before the dump');

# dump, and restore into a new database
my $dumpfile = "$tmpdir/src.dump";
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dumpfile, '-d', 'src' ],
	'pg_dump -Fc of the source database');
$node->command_ok([ 'createdb', 'dst' ], 'createdb of the target database');
$node->command_ok(
	[ 'pg_restore', '--exit-on-error', '-d', 'dst', $dumpfile ],
	'pg_restore into the target database');

# the live keys are all there, with identical fingerprints and results
is($node->safe_psql('dst', $live_query),
	$live_src, 'dst: the live keys are restored identically');
is( $node->safe_psql(
		'dst', q{SELECT count(*) FROM idempotency_keys}),
	'5', 'dst: exactly the five live keys are restored');
# the expired one is not
is( $node->safe_psql(
		'dst', q{SELECT count(*) FROM idempotency_keys WHERE key = 'pay-3'}),
	'0', 'dst: the expired key was not dumped');
is(count_payments('dst'), $payments_src, 'dst: the payments are restored');

# the stored result of a restored key still names its restored payment
is( $node->safe_psql(
		'dst', q{
SELECT count(*) FROM idempotency_keys k
JOIN payments p ON p.key COLLATE "C" = k.key
  AND p.customer = CASE k.owner::text WHEN 'postgres' THEN 'cus_su' ELSE 'cus_app' END
WHERE (k.result->'rows'->0->>'id')::bigint = p.id}),
	'4',
	'dst: every restored payment key names its restored payment');
is( $node->safe_psql('dst', q{SELECT idem_lookup('report-1')}),
	$node->safe_psql('src', q{SELECT idem_lookup('report-1')}),
	'dst: idem_lookup returns the same stored result as in the source');

# a retried request replays and makes no payment
is(pay('dst', 'postgres', 'pay-1', 'cus_su', '10.00'),
	"true|$id{'postgres:pay-1'}",
	'dst: a retry of a restored postgres key replays its payment id');
is(pay('dst', 'postgres', 'pay-2', 'cus_su', '10.00'),
	"true|$id{'postgres:pay-2'}",
	'dst: a retry of another restored postgres key replays');
is( $node->safe_psql(
		'dst', q{
SELECT r->>'replayed', r->>'row_count'
FROM idem_execute('report-1', 'SELECT g AS n FROM generate_series(1, 3) g') r}),
	'true|3',
	'dst: a retry of the restored SELECT key replays');
is(count_payments('dst'), $payments_src, 'dst: the retries made no payment');

# the ordinary role replays its own keys, not the superuser's key of the same name
is(pay('dst', 'regress_app', 'pay-1', 'cus_app', '20.00'),
	"true|$id{'regress_app:pay-1'}",
	'dst: regress_app replays its own pay-1, not the superuser\'s');
is(pay('dst', 'regress_app', 'app-9', 'cus_app', '20.00'),
	"true|$id{'regress_app:app-9'}",
	'dst: regress_app replays its own app-9');
is(count_payments('dst'), $payments_src,
	'dst: the ordinary role\'s retries made no payment');

# a different request under a restored key is still refused
my ($ret, $stdout, $stderr) = $node->psql('dst',
	qq{SELECT idem_execute('pay-1', '$ins', 'pay-1'::text, 'cus_su'::text, 99.00::numeric)});
isnt($ret, 0, 'dst: a different request under a restored key fails');
like($stderr, qr/idempotency key "pay-1" was used with a different request/,
	'dst: ... with the IK001 message');

# the expired key counts as absent: it runs again
is( pay('dst', 'postgres', 'pay-3', 'cus_su', '10.00') =~ /^false\|\d+$/ ? 1 : 0,
	1, 'dst: the expired, undumped key runs again');
is(count_payments('dst'), $payments_src + 1,
	'dst: ... making one new payment');

# row level security and privileges survived the restore
is( $node->safe_psql(
		'dst', q{
SELECT relrowsecurity FROM pg_class WHERE oid = 'idempotency_keys'::regclass}),
	't',
	'dst: idempotency_keys has row level security enabled');
is( $node->safe_psql(
		'dst', q{
SELECT policyname, cmd FROM pg_policies WHERE tablename = 'idempotency_keys'}),
	'idempotency_keys_own_role|SELECT',
	'dst: the own-role policy is there');
is( $node->safe_psql(
		'dst', q{
SELECT string_agg(owner || '/' || key, ',' ORDER BY key) FROM idempotency_keys},
		extra_params => [ '-U', 'regress_app' ]),
	'regress_app/app-9,regress_app/pay-1',
	'dst: regress_app sees only its own keys');
is( $node->safe_psql(
		'dst', q{SELECT idem_lookup('pay-2') IS NULL},
		extra_params => [ '-U', 'regress_app' ]),
	't',
	'dst: regress_app cannot look up a superuser key');
($ret, $stdout, $stderr) = $node->psql(
	'dst', q{
INSERT INTO idempotency_keys(owner, scope, key, expires_at)
VALUES ('regress_app', '', 'forged', now() + interval '1 day')},
	extra_params => [ '-U', 'regress_app' ]);
like($stderr, qr/permission denied for table idempotency_keys/,
	'dst: regress_app cannot write the keys table directly');
($ret, $stdout, $stderr) = $node->psql(
	'dst', q{DELETE FROM idempotency_keys},
	extra_params => [ '-U', 'regress_app' ]);
like($stderr, qr/permission denied for table idempotency_keys/,
	'dst: regress_app cannot delete from the keys table directly');
is($node->safe_psql('dst', 'SELECT count(*) FROM idempotency_keys'),
	'6', 'dst: the five restored keys and the re-run expired key are there');

$node->stop;
done_testing();
