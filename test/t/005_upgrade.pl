# 005_upgrade: for each earlier release: create with it, load live work,
# replace the library as a package upgrade does, ALTER EXTENSION durable
# UPDATE, finish everything with a worker.
#
# The earlier release runs its own library, built from its commit in the
# git history (DurableTap::release_install), and its install script.
# Under it the database gets: a workflow whose task is ready, a workflow task leased
# for a day and one leased for a minute, an activity task leased for a
# day and one leased for a minute, a pending one-hour timer, two signal
# waiters (one with a signal buffered before it waits, one waiting for a
# signal still to come), a parent waiting for its child, a schedule, a
# namespace "billing" with its own retention and a workflow in it, and
# grants for a client role and a worker role.
#
# Then the server restarts with this library: until ALTER EXTENSION
# durable UPDATE every call fails with DU013 and changes nothing, and the
# background worker waits, saying so.  After the update:
#  (a) the schema equals a fresh install in another database (same
#      grant calls made there): test/t/schema_fingerprint.sql in both,
#      with a diff on mismatch;
#  (b) the day-long tokens still complete; the minute-long leases expire,
#      their tokens are fenced (DU004) and the tasks come back and
#      complete; the timer fires; the signals arrive in order; the child
#      closes and resolves its parent; the schedule fires; every workflow
#      completes with its expected result; the client role starts and
#      reads, the worker role does all the work (SET ROLE).
#
# The background worker is off and durable.tick() does the periodic work,
# under durable.clock_offset: the leases, the timer and the schedule are
# due at chosen moments, each checked, instead of whenever the worker's
# real clock gets there (an hour for the timer); and nothing changes the
# database between the loading and the upgrade but the upgrade itself.
use strict;
use warnings;

use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use DurableTap;

my $json = JSON::PP->new->canonical;

# the workflow (and activity) code of the test's worker
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
		# return activity("double", {x}, queue)
		return ('suspend',
			$json->encode([ { seq => 1, type => 'activity', name => 'double',
					input => { x => $input->{x} }, queue => $input->{queue} } ]))
		  unless $step{1};
		return ('suspend', '[]') unless $step{1}{status} eq 'completed';
		return ('complete', $json->encode($step{1}{result}));
	}
	if ($type eq 'sleeper')
	{
		return ('suspend', $json->encode([ { seq => 1, type => 'sleep', duration => '1h' } ]))
		  unless $step{1};
		return ('suspend', '[]') unless $step{1}{status} eq 'completed';
		return ('complete', '"woke"');
	}
	if ($type eq 'waiter')
	{
		# for i in 1..n: got[i] = wait_signal("go"); return [got[i].n ...]
		my @got;
		for my $seq (1 .. $input->{signals})
		{
			return ('suspend', $json->encode([ { seq => $seq, type => 'signal', name => 'go' } ]))
			  unless $step{$seq};
			return ('suspend', '[]') unless $step{$seq}{status} eq 'completed';
			push @got, $step{$seq}{result}{n};
		}
		return ('complete', $json->encode(\@got));
	}
	if ($type eq 'parent')
	{
		return ('suspend',
			$json->encode([ { seq => 1, type => 'child', name => 'echo',
					input => { from => 'parent' }, workflow_id => 'child-1',
					queue => 'kids' } ]))
		  unless $step{1};
		return ('suspend', '[]') unless $step{1}{status} eq 'completed';
		return ('complete', $json->encode({ child => $step{1}{result} }));
	}
	die "unknown workflow type $type";
}

sub upgrade_from
{
	my ($from) = @_;
	my $release = release_install($from, "$PostgreSQL::Test::Utils::tmp_check/release-$from");
	my $node = PostgreSQL::Test::Cluster->new("upgrade_from_$from", install_path => $release);
	$node->init;
	$node->append_conf('postgresql.conf', qq{
	shared_preload_libraries = 'durable'
	durable.enable_background_worker = off
	});
	$node->start;

	$node->safe_psql('postgres', q{
	CREATE DATABASE up;
	CREATE DATABASE fresh;
	CREATE ROLE app_client LOGIN;
	CREATE ROLE app_worker LOGIN;
	CREATE ROLE app_admin LOGIN;
	});

	my $as_client = 'SET ROLE app_client;';
	my $as_worker = 'SET ROLE app_worker;';
	my @queues = qw(default later lq lq2 acts1 acts2 kids);

	#
	# the earlier release and its work
	#
	# a namespace and grants of every kind: made the same way under the
	# earlier release and in the fresh install the upgrade is compared with
	my $setup = q{
	SELECT durable.namespace_create('billing', '30 days');
	SELECT durable.grant_client('app_client');
	SELECT durable.grant_client('app_client', 'billing');
	SELECT durable.grant_worker('app_worker');
	SELECT durable.grant_worker('app_worker', '*', 'billing');
	SELECT durable.grant_admin('app_admin');
	};
	$node->safe_psql('up', "CREATE EXTENSION durable VERSION '$from'; $setup");
	is($node->safe_psql('up', q{SELECT extversion FROM pg_extension WHERE extname = 'durable'}),
		$from, "created at version $from");

	# the client role starts everything; queues keep apart what the worker
	# runs now from what waits for the upgrade
	$node->safe_psql('up', qq{$as_client
	SELECT durable.wf_start('echo', '{"n": 1}', 'ready-1', 'later');
	SELECT durable.wf_start('echo', '{"n": 2}', 'leased-wf', 'lq');
	SELECT durable.wf_start('echo', '{"n": 3}', 'expired-wf', 'lq2');
	SELECT durable.wf_start('act', '{"x": 21, "queue": "acts1"}', 'leased-act');
	SELECT durable.wf_start('act', '{"x": 5, "queue": "acts2"}', 'expired-act');
	SELECT durable.wf_start('sleeper', NULL, 'sleeper');
	SELECT durable.wf_start('waiter', '{"signals": 3}', 'waiter-a');
	SELECT durable.wf_start('waiter', '{"signals": 2}', 'waiter-b');
	SELECT durable.wf_start('parent', NULL, 'parent-1');
	-- signal 1 before either waiter waits: buffered
	SELECT durable.wf_signal('waiter-a', 'go', '{"n": 1}');
	SELECT durable.wf_signal('waiter-b', 'go', '{"n": 1}');
	SET durable.namespace = 'billing';
	SELECT durable.wf_start('echo', '{"n": "billing"}', 'bill-1');
	});
	# the schedule's first fire is an hour away (admin call: the superuser)
	$node->safe_psql('up', q{
	SELECT durable.schedule_create('nightly', 'every 1h', 'echo', '{"from": "schedule"}',
	                               '{"queue": "later"}');
	});

	# the worker role runs queue default: the timer is set, the waiters take
	# signal 1 and wait for signal 2, the parent starts its child (on queue
	# kids), the act workflows schedule their activities
	my %claims;
	work_until_idle_with($node, \&code, \%claims, db => 'up', sql => $as_worker);
	ok(%claims, "the worker role ran workflow tasks under $from");

	# waiter-a: signal 2 resolves its waiting step 2 (its workflow task is
	# ready again), signal 3 stays buffered until it waits for step 3
	$node->safe_psql('up', qq{$as_client
	SELECT durable.wf_signal('waiter-a', 'go', '{"n": 2}');
	SELECT durable.wf_signal('waiter-a', 'go', '{"n": 3}');
	});

	# leases: a day for one workflow task and one activity task, a minute for
	# the others
	my %token;
	for (['leased-wf', 'lq', '1 day'], ['expired-wf', 'lq2', '1 min'],
		['leased-act', 'acts1', '1 day'], ['expired-act', 'acts2', '1 min'])
	{
		my ($id, $queue, $lease) = @$_;
		my $out = $node->safe_psql('up', qq{$as_worker
			SELECT token, workflow_id, kind FROM durable.task_poll('$queue', 'tap', 1, '$lease')});
		my ($token, $got_id, $kind) = split /\|/, $out;
		is($got_id, $id, "$id: claimed its " . ($kind // '?') . " task for $lease");
		$token{$id} = $token;
	}

	is( $node->safe_psql('up', q{
			SELECT string_agg(format('%s %s %s %s', w.workflow_id, j.seq, j.kind, j.status),
			                  ', ' ORDER BY w.workflow_id, j.seq)
			  FROM durable.workflows w JOIN durable.journal j USING (run_id)}),
		'expired-act 1 activity pending, leased-act 1 activity pending, '
		  . 'parent-1 1 child pending, sleeper 1 sleep pending, '
		  . 'waiter-a 1 signal completed, waiter-a 2 signal completed, '
		  . 'waiter-b 1 signal completed, waiter-b 2 signal pending',
		'before the upgrade: the journal');
	is( $node->safe_psql('up', q{
			SELECT string_agg(format('%s %s %s', r.workflow_id, t.kind, t.state),
			                  ', ' ORDER BY r.workflow_id, t.seq)
			  FROM durable.tasks t JOIN durable.runs r USING (run_id)}),
		'bill-1 workflow ready, child-1 workflow ready, expired-act activity leased, '
		  . 'expired-wf workflow leased, '
		  . 'leased-act activity leased, leased-wf workflow leased, '
		  . 'ready-1 workflow ready, waiter-a workflow ready',
		'before the upgrade: the tasks');
	is( $node->safe_psql('up', q{
			SELECT string_agg(format('%s %s', r.workflow_id, s.payload->>'n'), ', ' ORDER BY s.signal_no)
			  FROM durable.signals s JOIN durable.runs r USING (run_id)
			 WHERE s.consumed_seq IS NULL}),
		'waiter-a 3', 'before the upgrade: signal 3 of waiter-a is buffered');
	is( $node->safe_psql('up', q{
			SELECT string_agg(namespace || ' ' || retention, ', ' ORDER BY namespace)
			  FROM durable.namespaces}),
		'billing 30 days, default 7 days', 'before the upgrade: the namespaces');

	#
	# the package upgrade: this library replaces the release's
	#
	$node->stop;
	# (the node's installation is the system's from now on)
	$node->{_install_path} = undef;
	$node->append_conf('postgresql.conf', 'durable.enable_background_worker = on');
	my $log_at = -s $node->logfile;
	$node->start;
	my $counts = q{SELECT (SELECT count(*) FROM durable.runs), (SELECT count(*) FROM durable.tasks),
		(SELECT count(*) FROM durable.steps), (SELECT count(*) FROM durable.signals)};
	my $before = $node->safe_psql('up', $counts);
	for my $call ("SELECT durable.wf_start('echo', NULL, 'too-early')",
		"SELECT durable.wf_signal('waiter-b', 'go', '{\"n\": 0}')",
		"SELECT * FROM durable.task_poll('default', 'tap', 1)",
		"SELECT durable.task_complete($token{'leased-wf'}, 'null')",
		"SELECT durable.wf_cancel('waiter-b')")
	{
		my ($ret, $stdout, $stderr) = $node->psql('up', "\\set VERBOSITY verbose\n$call");
		like($stderr, qr/DU013: durable's library is version \d+\.\d+ but the extension in this database is at version \Q$from\E/,
			"before ALTER EXTENSION UPDATE: DU013 from $call");
	}
	ok($node->wait_for_log(qr/durable worker waits: the library is version .* at version \Q$from\E/, $log_at),
		'the background worker waits for the update and says so');
	is($node->safe_psql('up', $counts), $before, 'nothing changed before the update');
	$node->append_conf('postgresql.conf', 'durable.enable_background_worker = off');
	$node->restart;

	#
	# the upgrade
	#
	$node->safe_psql('up', 'ALTER EXTENSION durable UPDATE');
	my $current = $node->safe_psql('up', q{SELECT default_version FROM pg_available_extensions WHERE name = 'durable'});
	is($node->safe_psql('up', q{SELECT extversion FROM pg_extension WHERE extname = 'durable'}),
		$current, "ALTER EXTENSION durable UPDATE went from $from to $current");

	#
	# (a) the schema equals a fresh install's, with the same grants made
	#
	$node->safe_psql('fresh', "CREATE EXTENSION durable; $setup");
	my $fingerprint_sql = slurp_file("$FindBin::RealBin/schema_fingerprint.sql");
	my %fp = map { $_ => $node->safe_psql($_, $fingerprint_sql) } qw(up fresh);
	ok($fp{fresh} =~ tr/\n// > 500, 'the fingerprint describes the schema ('
		  . ($fp{fresh} =~ tr/\n//) . ' lines)');
	my $same = $fp{up} eq $fp{fresh};
	ok($same, "the schema upgraded from $from is identical to a fresh $current install");
	unless ($same)
	{
		my $dir = $PostgreSQL::Test::Utils::tmp_check;
		for (['fresh', 'fingerprint_fresh.txt'], ['up', 'fingerprint_upgraded.txt'])
		{
			open my $fh, '>', "$dir/$_->[1]" or die "$dir/$_->[1]: $!";
			print $fh "$fp{$_->[0]}\n";
			close $fh;
		}
		diag("schema differences (- fresh $current install, + $from upgraded):\n"
			  . `diff -u $dir/fingerprint_fresh.txt $dir/fingerprint_upgraded.txt`);
	}

	# the data the upgrade had to keep or convert
	is( $node->safe_psql('up', q{
			SELECT string_agg(format('%s %s %s %s', role::text, kind, namespace, queue), ', '
			                  ORDER BY role::text, kind, namespace)
			  FROM durable.grants}),
		'app_admin admin * *, app_client client billing *, app_client client default *, '
		  . 'app_worker worker billing *, app_worker worker default *',
		'grants name their roles (regrole)');
	is( $node->safe_psql('up', q{
			SELECT string_agg(namespace || ' ' || retention, ', ' ORDER BY namespace)
			  FROM durable.namespaces}),
		'billing 30 days, default 7 days', 'namespaces and retention kept');

	#
	# (b) finish everything
	#

	# tokens leased for a day before the upgrade still work
	$node->safe_psql('up', qq{$as_worker
	SELECT durable.task_complete($token{'leased-wf'}, '"finished with the old token"');
	SELECT durable.task_complete($token{'leased-act'}, '{"y": 42}');
	});
	is($node->safe_psql('up', q{SELECT durable.wf_status('leased-wf')}),
		'completed', 'leased-wf: the pre-upgrade workflow token completed the run');
	is( $node->safe_psql('up', q{
			SELECT status || ' ' || result::text FROM durable.journal
			 WHERE workflow_id = 'leased-act' AND seq = 1}),
		'completed {"y": 42}', 'leased-act: the pre-upgrade activity token completed the step');

	# 90 minutes later: the minute leases expire, the timer and the
	# schedule's first fire are due (its second, at two hours, is not)
	my $offset = q{SET durable.clock_offset = '90min';};
	my $handled = $node->safe_psql('up', "$offset SELECT durable.tick()");
	cmp_ok($handled, '>=', 4, "tick handled the expired leases, the timer, the schedule ($handled items)");
	for my $id ('expired-wf', 'expired-act')
	{
		my ($ret, $stdout, $stderr) = $node->psql('up', qq{\\set VERBOSITY verbose
			$offset $as_worker SELECT durable.task_complete($token{$id}, '{"late": true}')});
		like($stderr, qr/DU004/, "$id: the token of the expired lease is fenced (DU004)");
	}
	is( $node->safe_psql('up', q{
			SELECT string_agg(format('%s %s %s', r.workflow_id, e.event_type, e.seq), ', '
			                  ORDER BY r.workflow_id)
			  FROM durable.events e JOIN durable.runs r USING (run_id)
			 WHERE e.event_type LIKE '%timed_out'}),
		'expired-act activity_attempt_timed_out 1, expired-wf workflow_task_timed_out ',
		'the expired leases were processed');
	is( $node->safe_psql('up', q{
			SELECT status FROM durable.journal WHERE workflow_id = 'sleeper' AND seq = 1}),
		'completed', 'the timer fired');
	is( $node->safe_psql('up', q{
			SELECT s.fires, s.skipped, count(r.*)
			  FROM durable.schedule_list s LEFT JOIN durable.runs r ON r.workflow_id = s.last_workflow_id
			 GROUP BY 1, 2}),
		'1|0|1', 'the schedule fired once and started its workflow');

	# the client role: signal 2 of waiter-b, a new workflow, reads
	$node->safe_psql('up', qq{$as_client
	SELECT durable.wf_signal('waiter-b', 'go', '{"n": 2}');
	SELECT durable.wf_start('echo', '{"n": "after"}', 'client-after', 'later');
	-- a function the upgrade added: the client role may call it too
	SELECT durable.wf_start_many('echo', ARRAY['{"n": "many"}']::jsonb[], ARRAY['client-many'], 'later');
	});
	is( $node->safe_psql('up', qq{$as_client
			SELECT durable.wf_status('client-after'), count(*) FROM durable.workflows}),
		'running|14', 'the client role starts (wf_start, wf_start_many) and reads after the upgrade');
	is( $node->safe_psql('up', qq{$as_client SET durable.namespace = 'billing';
			SELECT durable.wf_status('bill-1')}),
		'running', 'the client role reads its other namespace');

	# the worker role does the rest, ten minutes later still (the retried
	# activity's backoff is over)
	my $later = q{SET durable.clock_offset = '100min';};
	%claims = ();
	work_until_idle_with($node, \&code, \%claims, db => 'up', sql => "$later $as_worker",
		queues => \@queues);
	work_until_idle_with($node, \&code, \%claims, db => 'up',
		sql => "$later $as_worker SET durable.namespace = 'billing';");
	ok($claims{'ready-1'} && $claims{'bill-1'}, 'the worker role claimed work after the upgrade');

	my $nightly = $node->safe_psql('up', q{SELECT last_workflow_id FROM durable.schedules});
	is( $node->safe_psql('up', q{
			SELECT string_agg(format('%s %s %s %s', namespace, workflow_id, status, output::text),
			                  E'\n' ORDER BY namespace, workflow_id)
			  FROM durable.workflows}),
		join("\n",
			'billing bill-1 completed {"echo": {"n": "billing"}}',
			'default child-1 completed {"echo": {"from": "parent"}}',
			'default client-after completed {"echo": {"n": "after"}}',
			'default client-many completed {"echo": {"n": "many"}}',
			'default expired-act completed {"y": 10}',
			'default expired-wf completed {"echo": {"n": 3}}',
			'default leased-act completed {"y": 42}',
			'default leased-wf completed "finished with the old token"',
			qq{default $nightly completed {"echo": {"from": "schedule"}}},
			'default parent-1 completed {"child": {"echo": {"from": "parent"}}}',
			'default ready-1 completed {"echo": {"n": 1}}',
			'default sleeper completed "woke"',
			'default waiter-a completed [1, 2, 3]',
			'default waiter-b completed [1, 2]'),
		'every workflow completed with its result');

	is( $node->safe_psql('up', q{
			SELECT count(*), count(*) FILTER (WHERE g.consumed_seq = (g.payload->>'n')::int)
			  FROM durable.signals g}),
		'5|5', 'every signal taken once, by the step of its turn');
	is( $node->safe_psql('up', q{
			SELECT string_agg(event_type, ', ' ORDER BY event_type) FROM durable.history
			 WHERE workflow_id = 'parent-1' AND event_type LIKE 'child%'}),
		'child_completed, child_scheduled', 'the child resolved its parent\'s step');
	is( $node->safe_psql('up', q{
			SELECT attempt FROM durable.journal WHERE workflow_id = 'expired-act' AND seq = 1}),
		'2', 'the expired activity completed on its second attempt');
	is($node->safe_psql('up', 'SELECT count(*) FROM durable.tasks'), '0', 'no task left over');
	is( $node->safe_psql('up', qq{$as_client SELECT durable.wf_result('client-after')}),
		'{"echo": {"n": "after"}}', 'the client role reads a result');

	$node->stop;
}

# every earlier release (this tree keeps its install script)
my ($current_release) =
  slurp_file("$FindBin::RealBin/../../durable.control") =~ /default_version = '([^']+)'/;
for my $from (sort keys %DurableTap::RELEASE_COMMIT)
{
	next if $from eq $current_release;
	note("upgrade from $from");
	upgrade_from($from);
}
done_testing();
