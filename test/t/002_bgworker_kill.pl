# 002_bgworker_kill: the background worker dies with SIGKILL.
#
# A backend killed with signal 9 makes the postmaster reset everything
# (crash recovery, every process restarted); that is expected.  Afterwards
# the launcher and the worker are back, and the timers set before the kill
# all fire exactly once: none lost, none twice.
#
# durable.naptime is ten minutes here, so timers only fire on time if the
# worker sleeps until the next due time (computed from the tables after
# the restart) and is woken early by a commit that sets an earlier timer.
# The last part checks the latter with a one-second timer; the wait is
# generous (20 s) but far below the naptime, so no timing is asserted
# strictly and a worker that is never woken still fails.
use strict;
use warnings;

use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;
use DurableNode;
use DurableTap;

my $json = JSON::PP->new->canonical;

# the workflow code: sleep(input.sleep); return "woke"
sub workflow_code
{
	my ($type, $input, $journal) = @_;
	my %step = map { $_->{seq} => $_ } @$journal;

	die "unknown workflow type $type" unless $type eq 'sleeper';
	return ('complete', '"woke"')
	  if $step{1} && $step{1}{status} eq 'completed';
	return ('suspend', '[]') if $step{1};
	return ('suspend',
		$json->encode([ { seq => 1, type => 'sleep', duration => $input->{sleep} } ]));
}

sub worker_pid
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'durable worker'});
}

my $node = durable_node('bgwkill', qq{
durable.naptime = '10min'
restart_after_crash = on
});
$node->safe_psql('postgres', 'CREATE EXTENSION durable');
# the launcher looks for databases with the extension now and then; a
# restart starts the worker at once
$node->restart;

ok( $node->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'durable worker'}),
	'durable worker running');
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'durable launcher'}),
	'1', 'durable launcher running');
my $old_pid = worker_pid($node);

# timers due 2, 3 and 4 seconds from now
my @sleepers = map { "sleeper-$_" } 1 .. 3;
for my $i (1 .. 3)
{
	my $secs = 1 + $i;
	$node->safe_psql('postgres',
		"SELECT durable.wf_start('sleeper', '{\"sleep\": \"${secs}s\"}', 'sleeper-$i')");
}
my %claims;
work_until_idle($node, \&workflow_code, \%claims);
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM durable.steps WHERE kind = 'sleep'}),
	'3', 'three timers set');
note 'timers still pending at the kill: '
  . $node->safe_psql('postgres',
	q{SELECT count(*) FROM durable.steps WHERE kind = 'sleep' AND status = 'pending'});

ok(kill('KILL', $old_pid), "sent SIGKILL to durable worker $old_pid");

# the postmaster notices, resets, and the launcher starts a new worker
ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity
		  WHERE backend_type = 'durable worker' AND pid <> $old_pid"),
	'a new durable worker is running');
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'durable launcher'}),
	'1', 'the launcher is back');
like(slurp_file($node->logfile),
	qr/\(PID $old_pid\) was terminated by signal 9/,
	'the postmaster saw the worker die');

ok( $node->poll_query_until('postgres',
		q{SELECT count(*) = 3 FROM durable.steps
		   WHERE kind = 'sleep' AND status = 'completed'}),
	'every timer set before the kill fired');
is( $node->safe_psql('postgres',
		q{SELECT count(*), count(DISTINCT t.run_id), bool_and(t.state = 'ready')
		    FROM durable.tasks t}),
	'3|3|t', 'one ready workflow task per fired timer');

my %after;
work_until_idle($node, \&workflow_code, \%after);
is_deeply([ map { $after{$_} // 0 } @sleepers ], [ 1, 1, 1 ],
	'each sleeper ran exactly one workflow task after its timer');
is( $node->safe_psql('postgres',
		q{SELECT string_agg(workflow_id || ' ' || status || ' ' || output::text, ', '
		                    ORDER BY workflow_id)
		    FROM durable.workflows}),
	'sleeper-1 completed "woke", sleeper-2 completed "woke", sleeper-3 completed "woke"',
	'every sleeper completed');
is( $node->safe_psql('postgres',
		q{SELECT count(*), count(*) FILTER (WHERE status = 'completed'
		                                     AND resolved_at >= due_at)
		    FROM durable.steps WHERE kind = 'sleep'}),
	'3|3', 'each timer resolved once, not before it was due');
is($node->safe_psql('postgres', 'SELECT count(*) FROM durable.tasks'),
	'0', 'no task left over');

# a one-second timer set while the worker sleeps its ten-minute naptime:
# the commit wakes it
$node->safe_psql('postgres',
	q{SELECT durable.wf_start('sleeper', '{"sleep": "1s"}', 'quick')});
work_until_idle($node, \&workflow_code, \%after);
{
	local $PostgreSQL::Test::Utils::timeout_default = 20;
	ok( $node->poll_query_until('postgres',
			q{SELECT status = 'completed' FROM durable.journal
			   WHERE workflow_id = 'quick' AND seq = 1}),
		'a short timer fires long before the naptime ends');
}
work_until_idle($node, \&workflow_code, \%after);
is($node->safe_psql('postgres', q{SELECT durable.wf_status('quick')}),
	'completed', 'the quick sleeper completed');

$node->stop;
done_testing();
