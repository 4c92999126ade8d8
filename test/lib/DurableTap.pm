# test/lib/DurableTap.pm: the workflow worker the TAP tests play over psql.
# Each test passes its workflow code: code($type, $input, $journal)
# returns ('complete', result JSON) or ('suspend', commands JSON).
package DurableTap;

use strict;
use warnings;

use Exporter 'import';
use File::Path qw(make_path);
use FindBin;
use JSON::PP;

our @EXPORT = qw(work_round work_until_idle work_round_with work_until_idle_with
  release_install);

# claim every ready workflow task of queue default once and run the code
# against its journal; returns the number of tasks claimed per workflow id
sub work_round
{
	my ($node, $code) = @_;
	my %claims;
	my $out = $node->safe_psql('postgres',
		q{SELECT token, workflow_id, workflow_type, coalesce(input, 'null'), journal
		    FROM durable.task_poll('default', 'tap', 100)});
	for my $line (split /\n/, $out)
	{
		my ($token, $id, $type, $input, $journal) = split /\|/, $line, 5;
		my ($what, $arg) = $code->($type, decode_json($input), decode_json($journal));
		$arg =~ s/'/''/g;
		$node->safe_psql('postgres',
			$what eq 'complete'
			? "SELECT durable.task_complete($token, '$arg')"
			: "SELECT durable.task_suspend($token, '$arg')");
		$claims{$id}++;
	}
	return \%claims;
}

# work rounds until one finds nothing to do; adds the claims to %$claims
sub work_until_idle
{
	my ($node, $code, $claims) = @_;
	for (my $round = 0; $round < 100; $round++)
	{
		my $got = work_round($node, $code);
		return unless %$got;
		$claims->{$_} += $got->{$_} for keys %$got;
	}
	die "workflows never went idle";
}

# work_round_with: one round of a worker that also runs activities, with
# options:
#   db     => database (default postgres)
#   sql    => statements run first in each session, e.g.
#             "SET durable.clock_offset = '2h'; SET ROLE app_worker;"
#             (SET durable.namespace picks the namespace)
#   queues => array of queue names to poll (default ['default'])
#   lease  => lease of each claim (default '30 s')
# The code gets ($type, $input, $journal, $task): for a workflow task
# $type is the workflow type and $journal the decoded journal; for an
# activity task $type is the activity name and $journal undef.  $task is
# the poll's row (token, kind, workflow_id, run_id, workflow_type, name,
# seq, attempt).  It returns ('complete', JSON), ('suspend', JSON commands)
# or ('fail', JSON error); each call is its own transaction.  Returns
# the number of tasks claimed per workflow id.
sub work_round_with
{
	my ($node, $code, %opt) = @_;
	my $db = $opt{db} // 'postgres';
	my $pre = $opt{sql} // '';
	my $lease = $opt{lease} // '30 s';
	my $queues = join ', ', map { "'$_'" } @{ $opt{queues} // ['default'] };
	my %claims;
	# one session claims from every queue, one more finishes what it got
	my $out = $node->safe_psql($db, qq{$pre
		SELECT json_build_object('token', p.token::text, 'kind', p.kind,
		           'workflow_id', p.workflow_id, 'run_id', p.run_id::text,
		           'workflow_type', p.workflow_type, 'name', p.name, 'seq', p.seq,
		           'attempt', p.attempt, 'input', p.input, 'journal', p.journal)
		  FROM unnest(ARRAY[$queues]::text[]) q,
		       LATERAL durable.task_poll(q, 'tap', 100, '$lease') p});
	my @calls;
	for my $line (split /\n/, $out)
	{
		my $task = decode_json($line);
		my ($what, $arg) = $task->{kind} eq 'workflow'
		  ? $code->($task->{workflow_type}, $task->{input}, $task->{journal}, $task)
		  : $code->($task->{name}, $task->{input}, undef, $task);
		$arg =~ s/'/''/g;
		push @calls,
			$what eq 'complete' ? "SELECT durable.task_complete($task->{token}, '$arg');"
		  : $what eq 'suspend'  ? "SELECT durable.task_suspend($task->{token}, '$arg');"
		  : $what eq 'fail'     ? "SELECT durable.task_fail($task->{token}, '$arg');"
		  :                       die "unknown action $what";
		$claims{ $task->{workflow_id} }++;
	}
	$node->safe_psql($db, join("\n", $pre, @calls)) if @calls;
	return \%claims;
}

# work_until_idle_with: work_round_with until a round finds nothing to
# do; adds the claims to %$claims
sub work_until_idle_with
{
	my ($node, $code, $claims, %opt) = @_;
	for (my $round = 0; $round < 100; $round++)
	{
		my $got = work_round_with($node, $code, %opt);
		return unless %$got;
		$claims->{$_} += $got->{$_} for keys %$got;
	}
	die "workflows never went idle";
}

# The commit of each release: its library is built from there and its
# install script is sql/durable--VERSION.sql (frozen since).  Add each
# release here when it is made: 005_upgrade.pl upgrades from every one.
our %RELEASE_COMMIT = ('0.1' => '896a134c79f55be4d524231c7ca3c0e9037d0b5b',);

# release_install($version, $dir): a PostgreSQL installation in $dir that
# is the system's own but for durable.so, built from the release's commit
# (from this repository's history): what a server runs before a package
# upgrade.  Returns its install path for PostgreSQL::Test::Cluster.
#
# The server finds its library and share directories relative to its own
# executable, so a copy of postgres and pg_ctl under $dir, the system's
# directory layout mirrored, with symbolic links to every other file,
# runs from $dir/lib with the same extension scripts.
sub release_install
{
	my ($version, $dir) = @_;
	my $commit = $RELEASE_COMMIT{$version} or die "no release $version";
	my $repo = "$FindBin::RealBin/../..";
	my %pg = map { $_ => `pg_config --$_` } qw(bindir pkglibdir sharedir);
	chomp %pg;

	# build the release's library
	my $src = "$dir/src";
	make_path($src);
	system("git -C '$repo' archive $commit Makefile durable.control src sql | tar -x -C '$src'") == 0
	  or die "cannot extract release $version ($commit) from the git history of $repo:"
	  . " the upgrade tests need a clone with history";
	system("make -s -j2 -C '$src' >'$dir/build.log' 2>&1") == 0
	  or die "building release $version failed: see $dir/build.log";

	# the installation
	my $inst = "$dir/inst";
	make_path("$inst$pg{bindir}", "$inst$pg{pkglibdir}", "$inst" . ($pg{sharedir} =~ s{/[^/]+$}{}r));
	for my $f (glob("$pg{bindir}/*"))
	{
		my $to = "$inst$pg{bindir}/" . ($f =~ s{.*/}{}r);
		if ($f =~ m{/(postgres|pg_ctl)$})
		{
			system('cp', $f, $to) == 0 or die "cp $f: $!";
		}
		else
		{
			symlink($f, $to) or die "symlink $f: $!";
		}
	}
	for my $f (glob("$pg{pkglibdir}/*"))
	{
		next if $f =~ m{/durable\.so$};
		symlink($f, "$inst$pg{pkglibdir}/" . ($f =~ s{.*/}{}r)) or die "symlink $f: $!";
	}
	system('cp', "$src/durable.so", "$inst$pg{pkglibdir}/durable.so") == 0 or die "cp: $!";
	symlink($pg{sharedir}, "$inst$pg{sharedir}") or die "symlink $pg{sharedir}: $!";
	return "$inst$pg{bindir}" =~ s{/bin$}{}r;
}

1;
