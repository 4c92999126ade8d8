# 009_priority_aging: the background worker ages a queue's waiting tasks
# about once a second even when its naptime is long.
#
# durable.naptime is 60 s, so the background worker sleeps until the next
# thing it knows is due.  A task waits on a queue; priority aging (every
# 1 s) is then set on the queue, which wakes the worker once.  The task
# must be raised step by step within seconds, with no durable.tick() call:
# the worker plans its next round a second ahead while a queue with aging
# has ready tasks (durable_tick_next_due).  Without that, the task would
# wait for the 60 s naptime.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use DurableNode;

my $node = durable_node('aging', "durable.naptime = '60s'\n");
$node->safe_psql('postgres', 'CREATE EXTENSION durable');
# the worker's first rounds after startup are past once the extension is served
sleep 2;

$node->safe_psql('postgres', "SELECT durable.wf_start('w', NULL, 'aging-1', 'agingq')");
$node->safe_psql('postgres', "SELECT durable.queue_set_priority_aging('agingq', '1 s', 3)");
my $aged = 0;
wait_for(20, sub {
	$aged = $node->safe_psql('postgres',
		"SELECT t.aged FROM durable.tasks t JOIN durable.runs r USING (run_id) WHERE r.workflow_id = 'aging-1'");
	return $aged >= 3;
});
is($aged, 3, 'the waiting task was raised to the cap by the background worker alone, within 20 s');
is( $node->safe_psql('postgres',
		"SELECT t.priority FROM durable.tasks t JOIN durable.runs r USING (run_id) WHERE r.workflow_id = 'aging-1'"),
	'3', 'its priority is 3');

$node->stop;
done_testing();
