# 003_no_preload: durable without shared_preload_libraries.
#
# No background worker and no shared memory: the SQL surface still works,
# durable.tick() does the periodic work when called (from cron or by
# hand), and queues get their NOTIFY on every transaction that gives them
# work.  Time is moved with durable.clock_offset instead of sleeping.
#
# (pg_cron could call durable.tick(), but the packaged pg_cron 1.4 only
# schedules whole minutes, too slow for a test; the call it would make is
# the one made here.)
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('nopreload');
$node->init;
$node->start;

is($node->safe_psql('postgres', q{SHOW shared_preload_libraries}),
	'', 'nothing is preloaded');
my ($ret, $stdout, $stderr) = $node->psql('postgres', 'CREATE EXTENSION durable');
is($ret, 0, 'CREATE EXTENSION works without preloading') or diag($stderr);
if ($ret != 0)
{
	$node->stop('immediate');
	done_testing();
	exit;
}
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'durable%'}),
	'0', 'no durable background process');

# a start gives the queue work: without the shared idle flags, its commit
# notifies listeners
like(
	$node->safe_psql('postgres',
		q{LISTEN durable_default;
		  SELECT durable.wf_start('sleeper', NULL, 'nap-1');}),
	qr/Asynchronous notification "durable_default" received/,
	'wf_start notifies durable_default');

# live queries need shared memory: a clear error, not a hang
($ret, $stdout, $stderr) = $node->psql('postgres',
	q{SELECT durable.wf_query('nap-1', 'state', NULL, '1 s')});
like($stderr, qr/live queries need durable in shared_preload_libraries/,
	'wf_query says it needs preloading');

# the workflow task suspends on a one-hour timer
my $token = $node->safe_psql('postgres',
	q{SELECT token FROM durable.task_poll('default', 'tap')});
like($token, qr/^\d+$/, 'claimed the workflow task');
$node->safe_psql('postgres',
	qq{SELECT durable.task_suspend($token, '[{"seq": 1, "type": "sleep", "duration": "1h"}]')});
is( $node->safe_psql('postgres',
		q{SELECT status FROM durable.journal WHERE workflow_id = 'nap-1' AND seq = 1}),
	'pending', 'timer pending');

# a tick now does nothing: the timer is not due
is($node->safe_psql('postgres', q{SELECT durable.tick()}), '0',
	'tick before the due time handles nothing');
is( $node->safe_psql('postgres',
		q{SELECT status FROM durable.journal WHERE workflow_id = 'nap-1' AND seq = 1}),
	'pending', 'timer still pending');

# two hours later (durable's clock) the tick fires it and notifies
my $out = $node->safe_psql('postgres',
	q{LISTEN durable_default;
	  SET durable.clock_offset = '2h';
	  SELECT durable.tick();});
like($out, qr/^1$/m, 'tick fired one timer');
like($out, qr/Asynchronous notification "durable_default" received/,
	'the fired timer notified durable_default');
is( $node->safe_psql('postgres',
		q{SELECT status FROM durable.journal WHERE workflow_id = 'nap-1' AND seq = 1}),
	'completed', 'timer fired');
is($node->safe_psql('postgres', q{SELECT durable.tick()}), '0',
	'a second tick finds nothing left to do');

# the next workflow task sees the fired timer and completes the run
my $task = $node->safe_psql('postgres',
	q{SET durable.clock_offset = '2h';
	  SELECT token || ' ' || journal FROM durable.task_poll('default', 'tap')});
like($task, qr/^\d+ \[\{.*"seq": 1.*"status": "completed"/,
	'the workflow task replays a completed timer');
($token) = split / /, $task;
$node->safe_psql('postgres',
	qq{SET durable.clock_offset = '2h';
	   SELECT durable.task_complete($token, '"woke"');});
is($node->safe_psql('postgres', q{SELECT durable.wf_status('nap-1')}),
	'completed', 'the workflow completed');
is($node->safe_psql('postgres', q{SELECT durable.wf_result('nap-1')}),
	'"woke"', 'with its result');
is($node->safe_psql('postgres', 'SELECT count(*) FROM durable.tasks'),
	'0', 'no task left over');

# an expired lease comes back through tick() as well
$node->safe_psql('postgres', q{SELECT durable.wf_start('sleeper', NULL, 'nap-2')});
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM durable.task_poll('default', 'tap', 1, '1 min')}),
	'1', 'claimed with a one-minute lease');
is( $node->safe_psql('postgres',
		q{SET durable.clock_offset = '5min'; SELECT durable.tick();}),
	'1', 'tick expired the lease');
is( $node->safe_psql('postgres',
		q{SELECT state, token IS NULL FROM durable.tasks}),
	'ready|t', 'the workflow task is ready again');

$node->stop;
done_testing();
