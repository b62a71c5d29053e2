
# Copyright (c) idempotency contributors

# Keys follow role OIDs (issue 8 item 3).  A dropped role's keys are left
# with a dangling owner until idem_purge deletes them; after that, a new
# role that is given the very same OID (simulated here with pg_resetwal -o,
# which sets the next OID the cluster hands out) inherits nothing: it cannot
# read, replay or forget the old role's stored results.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('oid_reuse');
$node->init;
$node->start;

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION idempotency;
CREATE ROLE regress_gone;
SET ROLE regress_gone;
SELECT idem_execute('card', $$SELECT '4242 4242 4242 4242' AS card$$);
RESET ROLE;
});
my $oid = $node->safe_psql('postgres',
	q{SELECT oid FROM pg_roles WHERE rolname = 'regress_gone'});
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM idempotency_keys WHERE owner::oid = } . $oid),
	'1',
	'the role has its stored result');

$node->safe_psql('postgres', 'DROP ROLE regress_gone');
is($node->safe_psql('postgres', 'SELECT idem_purge()'),
	'1', 'idem_purge deletes the key of the dropped role');

# hand the dropped role's OID out again (once VACUUM has removed the dead
# pg_authid row: new OIDs are never ones a dead row still holds)
$node->safe_psql('postgres', 'VACUUM pg_authid');
$node->stop;
command_ok([ 'pg_resetwal', '-o', $oid, $node->data_dir ],
	'pg_resetwal sets the next OID to the dropped role\'s');
$node->start;
$node->safe_psql('postgres', 'CREATE ROLE regress_reborn');
is( $node->safe_psql(
		'postgres', q{SELECT oid FROM pg_roles WHERE rolname = 'regress_reborn'}),
	$oid,
	'the new role has the dropped role\'s OID');

my $as_new = q{SET ROLE regress_reborn; };
is($node->safe_psql('postgres', $as_new . q{SELECT idem_lookup('card') IS NULL}),
	't', 'the new role cannot look the old result up');
is($node->safe_psql('postgres', $as_new . q{SELECT idem_forget('card')}),
	'f', 'nor forget it');
is( $node->safe_psql(
		'postgres',
		$as_new . q{SELECT idem_execute('card', $$SELECT '4242 4242 4242 4242' AS card$$) ->> 'replayed'}),
	'false',
	'the same request runs for the new role instead of replaying the old result');

$node->stop;
done_testing();
