# 006_dump_restore: pg_dump keeps durable's state; a restore carries on.
#
# Database src holds: a completed workflow; workflows whose task is ready;
# a workflow task leased for a day; a pending timer (due a second later)
# and a run with both a pending timer and a ready workflow task; a
# buffered signal; an activity that failed once and waits for its retry;
# a schedule; a namespace "billing" with its own retention and a workflow
# in it; the default namespace's retention changed to 3 days; a queue
# setting; grants for a client role and a worker role.
#
# It is dumped and restored on the same node three ways:
#   dst_fc:    pg_dump -Fc, pg_restore --single-transaction;
#   dst_plain: pg_dump | psql -1 -v ON_ERROR_STOP=1, into a database the
#              background worker serves all along (the restore's own
#              transaction reads what it restored, before it commits);
#   hz2:       pg_restore -j 2 (many transactions) into a database the
#              background worker does not serve (durable.databases).
# Each restored database must equal src: every table of schema durable
# row for row (counts and contents) and the sequences, read before the
# background worker serves it; the schema and its ACLs
# (test/t/schema_fingerprint.sql); the default namespace's 3 days; the
# grants.  Then all are served: new ids continue after the restored
# ones, the background worker fires the due timers, a tick fires the
# schedule, and the client and worker roles (SET ROLE) finish every
# workflow, the token leased in src included.
#
# The background worker runs (naptime 100 ms) for the databases listed
# in durable.databases; src never is, so its timers are still pending
# (and due) in the dump.  Why a restore must be one transaction, or go to
# a database the worker does not serve yet: the launcher starts a worker
# in every served database at its next rescan (every 10 s, or at once
# when a durable call commits there), and a worker that finds the
# extension acts on whatever has been restored so far.  Database hz
# shows it: restored in two steps as pg_restore commits them (all but
# the data of durable.tasks and the sequences, then those), with the
# worker let in between: it fires the restored timers and makes workflow
# tasks, the data of durable.tasks then no longer loads (duplicate key),
# and every dumped task is lost.
#
# DURABLE_TAP_VERSION=0.1 creates src at version 0.1 (whose tables were
# not marked with pg_extension_config_dump): the test then fails, since
# pg_dump keeps none of the state.
use strict;
use warnings;

use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use DurableNode;
use DurableTap;

my $json = JSON::PP->new->canonical;
my $version = $ENV{DURABLE_TAP_VERSION};

sub code
{
	my ($type, $input, $journal, $task) = @_;

	if ($task->{kind} eq 'activity')
	{
		die "unknown activity $type" unless $type eq 'double';
		return ('complete', $json->encode({ y => 2 * $input->{x} }));
	}
	my %step = map { $_->{seq} => $_ } @$journal;
	if ($type eq 'echo')
	{
		return ('complete', $json->encode({ echo => $input }));
	}
	if ($type eq 'act')
	{
		return ('suspend',
			$json->encode([ { seq => 1, type => 'activity', name => 'double',
					input => { x => $input->{x} }, queue => 'acts' } ]))
		  unless $step{1};
		return ('suspend', '[]') unless $step{1}{status} eq 'completed';
		return ('complete', $json->encode($step{1}{result}));
	}
	if ($type eq 'sleeper')
	{
		return ('suspend', $json->encode([ { seq => 1, type => 'sleep', duration => '1s' } ]))
		  unless $step{1};
		return ('suspend', '[]') unless $step{1}{status} eq 'completed';
		return ('complete', '"woke"');
	}
	if ($type eq 'racer')
	{
		# a timer and a signal wait at once; done when both resolved
		return ('suspend',
			$json->encode([ { seq => 1, type => 'sleep', duration => '1s' },
					{ seq => 2, type => 'signal', name => 'go' } ]))
		  unless $step{1};
		return ('suspend', '[]')
		  unless $step{1}{status} eq 'completed' && $step{2}{status} eq 'completed';
		return ('complete', '"both"');
	}
	if ($type eq 'waiter')
	{
		return ('suspend', $json->encode([ { seq => 1, type => 'signal', name => 'go' } ]))
		  unless $step{1};
		return ('suspend', '[]') unless $step{1}{status} eq 'completed';
		return ('complete', $json->encode([ $step{1}{result}{n} ]));
	}
	die "unknown workflow type $type";
}

my $node = durable_node('dump', qq{
durable.naptime = 100
durable.databases = 'dst_plain'
});
my $tmp = $PostgreSQL::Test::Utils::tmp_check;

$node->safe_psql('postgres', q{
CREATE DATABASE src;
CREATE ROLE app_client LOGIN;
CREATE ROLE app_worker LOGIN;
});
my $as_client = 'SET ROLE app_client;';
my $as_worker = 'SET ROLE app_worker;';
my @queues = qw(default later lq wq acts);

#
# the source database
#
$node->safe_psql('src',
	'CREATE EXTENSION durable' . ($version ? " VERSION '$version'" : ''));
note 'src created at version '
  . $node->safe_psql('src', q{SELECT extversion FROM pg_extension WHERE extname = 'durable'});
$node->safe_psql('src', q{
SELECT durable.namespace_create('billing', '30 days');
SELECT durable.namespace_set_retention('default', '3 days');
SELECT durable.grant_client('app_client');
SELECT durable.grant_client('app_client', 'billing');
SELECT durable.grant_worker('app_worker');
SELECT durable.grant_worker('app_worker', '*', 'billing');
SELECT durable.queue_set_concurrency('acts', 50);
SELECT durable.schedule_create('nightly', 'every 1h', 'echo', '{"from": "schedule"}',
                               '{"queue": "later"}');
});
$node->safe_psql('src', qq{$as_client
SELECT durable.wf_start('echo', '{"n": 0}', 'done-1');
SELECT durable.wf_start('echo', '{"n": 1}', 'ready-1', 'later');
SELECT durable.wf_start('echo', '{"n": 2}', 'leased-wf', 'lq');
SELECT durable.wf_start('sleeper', NULL, 'sleeper');
SELECT durable.wf_start('racer', NULL, 'racer');
SELECT durable.wf_start('act', '{"x": 7}', 'flaky');
SELECT durable.wf_start('waiter', NULL, 'waiter', 'wq');
SELECT durable.wf_signal('waiter', 'go', '{"n": 1}');
SET durable.namespace = 'billing';
SELECT durable.wf_start('echo', '{"n": "billing"}', 'bill-1');
});
# queue default: done-1 completes, the timers are set, flaky schedules
# its activity; then racer's signal resolves its step 2 (its workflow
# task is ready, its timer still pending)
my %claims;
work_until_idle_with($node, \&code, \%claims, db => 'src', sql => $as_worker);
$node->safe_psql('src', qq{$as_client SELECT durable.wf_signal('racer', 'go', '{"n": 1}')});
my $token = $node->safe_psql('src', qq{$as_worker
	SELECT token FROM durable.task_poll('lq', 'tap', 1, '1 day')});
my $act = $node->safe_psql('src', qq{$as_worker
	SELECT token FROM durable.task_poll('acts', 'tap', 1, '1 day')});
$node->safe_psql('src', qq{$as_worker
	SELECT durable.task_fail($act, '{"message": "flaky", "type": "Flaky"}')});

is( $node->safe_psql('src', q{
		SELECT string_agg(format('%s %s %s', r.workflow_id, t.kind, t.state),
		                  ', ' ORDER BY r.workflow_id, t.seq)
		  FROM durable.tasks t JOIN durable.runs r USING (run_id)}),
	'bill-1 workflow ready, flaky activity ready, leased-wf workflow leased, '
	  . 'racer workflow ready, ready-1 workflow ready, waiter workflow ready',
	'src: the tasks');
is( $node->safe_psql('src', q{
		SELECT string_agg(format('%s %s %s %s', w.workflow_id, j.seq, j.kind, j.status),
		                  ', ' ORDER BY w.workflow_id, j.seq)
		  FROM durable.workflows w JOIN durable.journal j USING (run_id)}),
	'flaky 1 activity pending, racer 1 sleep pending, racer 2 signal completed, '
	  . 'sleeper 1 sleep pending',
	'src: the journal');

# what every restored database must hold: each table of schema durable,
# row for row, and the sequences
my $contents_sql = q{
SELECT string_agg(line, E'\n' ORDER BY line) FROM (
    SELECT format('table %s: %s rows, md5 %s', c.relname,
                  (xpath('/row/n/text()', x))[1], (xpath('/row/h/text()', x))[1]) AS line
      FROM pg_class c,
           LATERAL query_to_xml(format(
               'SELECT count(*) AS n, md5(coalesce(string_agg(t::text, %L ORDER BY t::text), %L)) AS h FROM %s t',
               E'\n', '', c.oid::regclass), false, true, '') x
     WHERE c.relnamespace = 'durable'::regnamespace AND c.relkind = 'r'
    UNION ALL
    SELECT format('sequence %s: last_value %s', sequencename, coalesce(last_value::text, 'none'))
      FROM pg_sequences WHERE schemaname = 'durable'
) l};
my $counts_sql = q{
SELECT string_agg(format('%s %s', c.relname,
                         (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %s', c.oid::regclass),
                                                             false, true, '')))[1]), ', ' ORDER BY c.relname)
  FROM pg_class c WHERE c.relnamespace = 'durable'::regnamespace AND c.relkind = 'r'};
my $fingerprint_sql = slurp_file("$FindBin::RealBin/schema_fingerprint.sql");
my $src_contents = $node->safe_psql('src', $contents_sql);
my $src_counts = $node->safe_psql('src', $counts_sql);
my $src_fingerprint = $node->safe_psql('src', $fingerprint_sql);
note "src: $src_counts";

#
# dumps
#
sub write_file
{
	my ($path, $text) = @_;
	open my $fh, '>', $path or die "$path: $!";
	print $fh $text;
	close $fh;
}

sub run_cmd
{
	my @cmd = @_;
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run(@cmd, '>', \$out, '2>', \$err);
	return ($ok, $out, $err);
}
my ($ok, $out, $err) = run_cmd([ 'pg_dump', '-Fc', '-f', "$tmp/src.dump", '-d', $node->connstr('src') ]);
ok($ok, 'pg_dump -Fc') or diag($err);
($ok, $out, $err) = run_cmd([ 'pg_dump', '-f', "$tmp/src.sql", '-d', $node->connstr('src') ]);
ok($ok, 'pg_dump (plain)') or diag($err);

#
# restores
#
$node->safe_psql('postgres', q{
CREATE DATABASE dst_fc;
CREATE DATABASE dst_plain;
CREATE DATABASE hz;
CREATE DATABASE hz2;
});
my %contents;    # what each restore made, before the worker acts on it
my %counts;

# dst_fc, not served yet
($ok, $out, $err) = run_cmd([ 'pg_restore', '--single-transaction', '--exit-on-error',
		'-d', $node->connstr('dst_fc'), "$tmp/src.dump" ]);
ok($ok && $err eq '', 'pg_restore --single-transaction into dst_fc') or diag($err);
$contents{dst_fc} = $node->safe_psql('dst_fc', $contents_sql);
$counts{dst_fc} = $node->safe_psql('dst_fc', $counts_sql);

# dst_plain, served by the background worker all along: the restore's
# transaction reads what it restored before it commits
write_file("$tmp/dst_plain.sql", slurp_file("$tmp/src.sql") . qq{
\\o $tmp/dst_plain.contents
$contents_sql;
\\o $tmp/dst_plain.counts
$counts_sql;
\\o
});
($ok, $out, $err) = run_cmd([ 'psql', '-X', '-q', '-A', '-t', '-1', '-v', 'ON_ERROR_STOP=1',
		'-d', $node->connstr('dst_plain'), '-f', "$tmp/dst_plain.sql" ]);
ok($ok && $err eq '', 'psql -1 -v ON_ERROR_STOP=1 of the plain dump into dst_plain (served)')
  or diag($err);
chomp($contents{dst_plain} = slurp_file("$tmp/dst_plain.contents"));
chomp($counts{dst_plain} = slurp_file("$tmp/dst_plain.counts"));

# hz2, not served: a restore in several transactions (as -j needs) is safe
($ok, $out, $err) = run_cmd([ 'pg_restore', '-j', '2', '--exit-on-error',
		'-d', $node->connstr('hz2'), "$tmp/src.dump" ]);
ok($ok && $err eq '', 'pg_restore -j 2 into hz2 (not served by the background worker)')
  or diag($err);
$contents{hz2} = $node->safe_psql('hz2', $contents_sql);
$counts{hz2} = $node->safe_psql('hz2', $counts_sql);

for my $db (qw(dst_fc dst_plain hz2))
{
	is($counts{$db}, $src_counts, "$db: row counts of every table as in src");
	is($contents{$db}, $src_contents, "$db: contents of every table and the sequences as in src");
}

# hz: a restore that is not one transaction, with the background worker
# let in between two of its commits
($ok, $out, $err) = run_cmd([ 'pg_restore', '-l', "$tmp/src.dump" ]);
my (@first, @second);
for my $line (split /\n/, $out)
{
	next if $line =~ /^;/;
	if ($line =~ /TABLE DATA durable tasks |SEQUENCE SET /) { push @second, $line }
	else { push @first, $line }
}
unless (ok(scalar(@second) >= 2, 'the dump has the data of durable.tasks and the sequences'))
{
	# nothing of durable's state was dumped: the rest would only time out
	diag($out);
	$node->stop;
	done_testing();
	exit;
}
write_file("$tmp/first.list", join("\n", @first) . "\n");
write_file("$tmp/second.list", join("\n", @second) . "\n");
($ok, $out, $err) = run_cmd([ 'pg_restore', '-L', "$tmp/first.list",
		'-d', $node->connstr('hz'), "$tmp/src.dump" ]);
ok($ok, 'hz: restored all but the data of durable.tasks and the sequences') or diag($err);
$node->append_conf('postgresql.conf', "durable.databases = 'dst_plain,hz'\n");
$node->reload;
ok( $node->poll_query_until('hz', q{
		SELECT count(*) = 2 FROM durable.steps WHERE kind = 'sleep' AND status = 'completed'}),
	'hz, half restored: the background worker fired the restored timers at once');
($ok, $out, $err) = run_cmd([ 'pg_restore', '-L', "$tmp/second.list",
		'-d', $node->connstr('hz'), "$tmp/src.dump" ]);
note("hz, second step: $err");
like($err, qr/duplicate key value violates unique constraint "tasks_pkey"/,
	'hz: then the data of durable.tasks no longer loads');
is( $node->safe_psql('hz', q{
		SELECT string_agg(r.workflow_id, ', ' ORDER BY r.workflow_id)
		  FROM durable.tasks t JOIN durable.runs r USING (run_id)}),
	'racer, sleeper', 'hz: only the tasks the worker made are left; the dumped ones are lost');

#
# each restored database equals src, and carries on
#
$node->append_conf('postgresql.conf', "durable.databases = 'dst_fc,dst_plain,hz,hz2'\n");
$node->reload;

for my $db (qw(dst_fc dst_plain hz2))
{
	my $fp = $node->safe_psql($db, $fingerprint_sql);
	ok($fp eq $src_fingerprint, "$db: schema and ACLs as in src");
	if ($fp ne $src_fingerprint)
	{
		write_file("$tmp/fingerprint_src.txt", "$src_fingerprint\n");
		write_file("$tmp/fingerprint_$db.txt", "$fp\n");
		diag(`diff -u $tmp/fingerprint_src.txt $tmp/fingerprint_$db.txt`);
	}
	is( $node->safe_psql($db, q{
			SELECT string_agg(namespace || ' ' || retention, ', ' ORDER BY namespace)
			  FROM durable.namespaces}),
		'billing 30 days, default 3 days', "$db: namespaces, default keeps its 3-day retention");
	is( $node->safe_psql($db, q{
			SELECT string_agg(format('%s %s %s %s', role::text, kind, namespace, queue), ', '
			                  ORDER BY role::text, kind, namespace)
			  FROM durable.grants}),
		'app_client client billing *, app_client client default *, '
		  . 'app_worker worker billing *, app_worker worker default *',
		"$db: grants kept");

	# new ids continue after the restored ones (the client role starts)
	my $max = $node->safe_psql($db, q{
		SELECT (SELECT max(run_id) FROM durable.runs) || ' ' ||
		       (SELECT max(token) FROM durable.tasks) || ' ' ||
		       (SELECT greatest(max(signal_no), (SELECT max(event_id) FROM durable.events))
		          FROM durable.signals)});
	my ($max_run, $max_token, $max_history) = split / /, $max;
	$node->safe_psql($db, qq{$as_client
		SELECT durable.wf_start('echo', '{"n": "new"}', 'new-1', 'later');
		SELECT durable.wf_signal('waiter', 'go', '{"n": 2}');});
	is( $node->safe_psql($db, qq{
			SELECT (SELECT run_id FROM durable.runs WHERE workflow_id = 'new-1') > $max_run,
			       (SELECT max(signal_no) FROM durable.signals) > $max_history}),
		't|t', "$db: a new run and a new signal get ids after the restored ones");
	my $new_token = $node->safe_psql($db, qq{$as_worker
		SELECT token FROM durable.task_poll('later', 'tap', 1)});
	cmp_ok($new_token, '>', $max_token, "$db: a new claim gets a token after the restored ones");
	$node->safe_psql($db, qq{$as_worker SELECT durable.task_release($new_token)});

	# the worker runs here (the start above woke the launcher): it fires
	# the timers, due since a second after they were set
	ok( $node->poll_query_until($db, q{
			SELECT count(*) = 2 FROM durable.steps WHERE kind = 'sleep' AND status = 'completed'}),
		"$db: the background worker fired the restored timers");

	# the token leased in src completes its task here
	$node->safe_psql($db, qq{$as_worker
		SELECT durable.task_complete($token, '"finished with the old token"')});

	# 90 minutes on, the schedule's first fire is due
	my $offset = q{SET durable.clock_offset = '90min';};
	$node->safe_psql($db, "$offset SELECT durable.tick()");
	is( $node->safe_psql($db, q{SELECT fires FROM durable.schedule_list}),
		'1', "$db: the schedule fired");

	%claims = ();
	work_until_idle_with($node, \&code, \%claims, db => $db, sql => "$offset $as_worker",
		queues => \@queues);
	work_until_idle_with($node, \&code, \%claims, db => $db,
		sql => "$offset $as_worker SET durable.namespace = 'billing';");

	my $nightly = $node->safe_psql($db, q{SELECT last_workflow_id FROM durable.schedules});
	is( $node->safe_psql($db, q{
			SELECT string_agg(format('%s %s %s %s', namespace, workflow_id, status, output::text),
			                  E'\n' ORDER BY namespace, workflow_id)
			  FROM durable.workflows}),
		join("\n",
			'billing bill-1 completed {"echo": {"n": "billing"}}',
			'default done-1 completed {"echo": {"n": 0}}',
			'default flaky completed {"y": 14}',
			'default leased-wf completed "finished with the old token"',
			'default new-1 completed {"echo": {"n": "new"}}',
			qq{default $nightly completed {"echo": {"from": "schedule"}}},
			'default racer completed "both"',
			'default ready-1 completed {"echo": {"n": 1}}',
			'default sleeper completed "woke"',
			'default waiter completed [1]'),
		"$db: every workflow completed with its result");
	is( $node->safe_psql($db, q{
			SELECT string_agg(format('%s %s %s', r.workflow_id, g.payload->>'n',
			                         coalesce(g.consumed_seq::text, 'buffered')),
			                  ', ' ORDER BY g.signal_no)
			  FROM durable.signals g JOIN durable.runs r USING (run_id)}),
		'waiter 1 1, racer 1 2, waiter 2 buffered',
		"$db: the buffered signal was delivered (the later one stays buffered)");
	is( $node->safe_psql($db, q{
			SELECT attempt FROM durable.journal WHERE workflow_id = 'flaky' AND seq = 1}),
		'2', "$db: the failed activity completed on its retry");
	is($node->safe_psql($db, 'SELECT count(*) FROM durable.tasks'), '0', "$db: no task left over");
}

$node->stop;
done_testing();
