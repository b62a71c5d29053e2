#!/usr/bin/perl
# META.json follows the PGXN Meta Spec 1.0.0 (https://pgxn.org/spec/): every
# required key, valid values, and versions that agree with the Makefile
# (EXTVERSION, the PostgreSQL 14 floor) and idempotency.control; `make dist`
# writes idempotency-VERSION.zip holding one top directory with META.json,
# the control file, the Makefile, every install script and every source file.
# Run from the repository root (scripts/test.sh pgxn); needs git and unzip.
use strict;
use warnings;
use File::Temp qw(tempdir);
use JSON::PP;
use Test::More;

sub slurp
{
	my ($file) = @_;
	open my $fh, '<', $file or die "cannot read $file: $!";
	local $/;
	return scalar <$fh>;
}

my $makefile = slurp('Makefile');
my $control = slurp('idempotency.control');
my $meta = eval { JSON::PP->new->decode(slurp('META.json')) };
ok($meta, 'META.json is JSON') or BAIL_OUT("META.json: $@");

# the Makefile and the control file: the extension's name and version
my ($extension) = $makefile =~ /^EXTENSION\s*=\s*(\S+)/m;
my ($extversion) = $makefile =~ /^EXTVERSION\s*=\s*(\S+)/m;
my ($default_version) = $control =~ /^default_version\s*=\s*'([^']*)'/m;
my ($min_num) = $makefile =~ /test \$\(VERSION_NUM\) -ge (\d+)/;
ok(defined $extension && defined $extversion && defined $min_num,
	'the Makefile names EXTENSION, EXTVERSION and the oldest server it builds for');
is($default_version, $extversion,
	"idempotency.control's default_version is the Makefile's EXTVERSION");
my $semver = join('.', (split(/\./, $extversion), 0, 0)[0 .. 2]);

# required keys (spec: name, abstract, version, maintainer, license, provides, meta-spec)
for my $key (qw(name abstract version maintainer license provides meta-spec))
{
	ok(defined $meta->{$key} && $meta->{$key} ne '', "META.json has $key");
}
is($meta->{'meta-spec'}{version}, '1.0.0', 'meta-spec version is 1.0.0');
is($meta->{name}, $extension, 'name is the Makefile EXTENSION');
like($meta->{version}, qr/^\d+\.\d+\.\d+$/, 'version is a semantic version');
is($meta->{version}, $semver,
	"version is the extension's version $extversion as a semantic version");
my @maintainers =
  ref $meta->{maintainer} ? @{ $meta->{maintainer} } : ($meta->{maintainer});
ok(@maintainers && !grep({ !/\S/ } @maintainers), 'maintainer is a name, or a list of them');
ok( grep({ $meta->{license} eq $_ }
		qw(agpl_3 apache_1_1 apache_2_0 artistic_1 artistic_2 bsd gpl_1 gpl_2
		  gpl_3 lgpl_2_1 lgpl_3_0 mit mozilla_1_0 mozilla_1_1 open_source perl
		  postgresql qpl_1_0 restricted unrestricted)),
	"license ($meta->{license}) is one of the spec's");
like($meta->{release_status} // 'stable', qr/^(stable|testing|unstable)$/,
	'release_status is stable, testing or unstable');

# provides: the extension, its install script, its documentation
my $provided = $meta->{provides}{$extension};
ok($provided, "provides names the extension $extension")
  or BAIL_OUT('nothing more to check');
ok(defined $provided->{file} && -f $provided->{file},
	"provides' file ($provided->{file}) exists");
ok(!defined $provided->{docfile} || -f $provided->{docfile},
	"provides' docfile exists");
is($provided->{version}, $semver, "provides' version is the extension's version");

# prereqs: the server versions the Makefile builds for
my $min_pg = sprintf('%d.0.0', $min_num / 10000);
is($meta->{prereqs}{runtime}{requires}{PostgreSQL},
	$min_pg, "prereqs: runtime requires PostgreSQL $min_pg, as the Makefile does");

# resources, if any: real addresses, no placeholders
my @urls = map { ref $_ ? values %$_ : $_ } values %{ $meta->{resources} // {} };
ok(!grep({ /example|placeholder|todo|fixme|xxx/i } @urls),
	'resources hold no placeholder');

# make dist
my $tmp = tempdir(CLEANUP => 1);
my $out = `DIST_DIR='$tmp' make -s dist 2>&1`;
is($?, 0, 'make dist succeeds') or diag($out);
my $zip = "$tmp/$extension-$meta->{version}.zip";
ok(-f $zip, "make dist writes $extension-$meta->{version}.zip");
my @entries = split /\n/, `unzip -Z1 '$zip'`;
my $prefix = "$extension-$meta->{version}/";
ok(@entries && !grep({ index($_, $prefix) != 0 } @entries),
	"every entry is under $prefix");
my %in_zip = map { substr($_, length $prefix) => 1 } @entries;
my @wanted = ('META.json', 'Makefile', "$extension.control",
	split(/\n/, `git -c safe.directory="\$PWD" ls-tree -r --name-only HEAD sql src`));
ok(grep({ m{^sql/.*\.sql$} } @wanted) && grep({ m{^src/.*\.c$} } @wanted),
	'HEAD has sql scripts and C sources');
my @missing = grep { !$in_zip{$_} } @wanted;
is_deeply(\@missing, [],
	'the zip holds META.json, the Makefile, the control file, sql/ and src/');
my $zipped_json = `unzip -p '$zip' '${prefix}META.json'`;
my $zipped_meta = eval { JSON::PP->new->decode($zipped_json) } // {};
is($zipped_meta->{version}, $meta->{version}, "the zip's META.json has the same version");

done_testing();
