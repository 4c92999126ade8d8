# 001_restart: timers and signals survive an immediate shutdown.
#
# Sleepers suspend on a timer due a few seconds later; waiters wait for
# four "go" signals in a row.  Signal 1 is sent before the waiter ever
# waits (buffered), signal 2 while it waits for step 2 (delivered at
# once), signal 3 before it waits for step 3 (buffered), then the server
# is stopped with "immediate" (no shutdown checkpoint: crash recovery) and
# started again, and signal 4 is sent afterwards.  Then every timer fires
# exactly once (its step resolves once, its run gets exactly one workflow
# task) and every waiter gets its signals once each, in the order sent.
#
# The workflow code is played over psql by DurableTap's work_round.
use strict;
use warnings;

use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;
use DurableNode;
use DurableTap;
use Time::HiRes qw(usleep);

my $json = JSON::PP->new->canonical;

# a round of the workflow worker: claim every ready workflow task of the
# queue and run the workflow code against its journal.  Returns the
# number of tasks claimed per workflow id.
sub workflow_code
{
	my ($type, $input, $journal) = @_;
	my %step = map { $_->{seq} => $_ } @$journal;

	if ($type eq 'sleeper')
	{
		# sleep(input.sleep); return "woke"
		return ('complete', '"woke"')
		  if $step{1} && $step{1}{status} eq 'completed';
		return ('suspend', '[]') if $step{1};
		return ('suspend',
			$json->encode([ { seq => 1, type => 'sleep', duration => $input->{sleep} } ]));
	}
	if ($type eq 'waiter')
	{
		# for i in 1..n: got[i] = wait_signal("go"); return [got[i].n ...]
		my @got;
		for my $seq (1 .. $input->{signals})
		{
			return ('suspend',
				$json->encode([ { seq => $seq, type => 'signal', name => 'go' } ]))
			  unless $step{$seq};
			return ('suspend', '[]') unless $step{$seq}{status} eq 'completed';
			push @got, $step{$seq}{result}{n};
		}
		return ('complete', $json->encode(\@got));
	}
	die "unknown workflow type $type";
}

sub signal_all
{
	my ($node, $n, @ids) = @_;
	$node->safe_psql('postgres',
		join '', map { "SELECT durable.wf_signal('$_', 'go', '{\"n\": $n}');\n" } @ids);
}

my $node = durable_node('restart', "durable.naptime = '100ms'\n");
$node->safe_psql('postgres', 'CREATE EXTENSION durable');

my @sleepers = map { "sleeper-$_" } 1 .. 3;
my @waiters  = map { "waiter-$_" } 1 .. 3;
for my $i (1 .. 3)
{
	my $secs = 2 + $i;
	$node->safe_psql('postgres',
		"SELECT durable.wf_start('sleeper', '{\"sleep\": \"${secs}s\"}', 'sleeper-$i');
		 SELECT durable.wf_start('waiter', '{\"signals\": 4}', 'waiter-$i');");
}

# signal 1 before the waiters wait: buffered, taken by step 1
signal_all($node, 1, @waiters);
my %before;
work_until_idle($node, \&workflow_code, \%before);
is( $node->safe_psql('postgres',
		q{SELECT string_agg(w.workflow_id || ' ' || j.seq || ' ' || j.kind
		                    || CASE WHEN j.kind = 'sleep' THEN '' ELSE ' ' || j.status END,
		                    ', ' ORDER BY w.workflow_id, j.seq)
		    FROM durable.workflows w JOIN durable.journal j USING (run_id)}),
	'sleeper-1 1 sleep, sleeper-2 1 sleep, sleeper-3 1 sleep, '
	  . 'waiter-1 1 signal completed, waiter-1 2 signal pending, '
	  . 'waiter-2 1 signal completed, waiter-2 2 signal pending, '
	  . 'waiter-3 1 signal completed, waiter-3 2 signal pending',
	'before the crash: timers set, waiters wait for signal 2');

# signal 2 resolves the waiting step 2; signal 3 stays buffered because
# nobody has run the waiters' next workflow task
signal_all($node, 2, @waiters);
signal_all($node, 3, @waiters);
is( $node->safe_psql('postgres',
		q{SELECT count(*) FILTER (WHERE consumed_seq IS NULL),
		         count(*) FILTER (WHERE consumed_seq IS NOT NULL)
		    FROM durable.signals}),
	'3|6', 'before the crash: signals 1 and 2 consumed, signal 3 buffered');
my $pending_timers = $node->safe_psql('postgres',
	q{SELECT count(*) FROM durable.steps WHERE kind = 'sleep' AND status = 'pending'});
note "timers still pending at the crash: $pending_timers";

$node->stop('immediate');
$node->start;
like(slurp_file($node->logfile),
	qr/database system was not properly shut down; automatic recovery in progress/,
	'the restart went through crash recovery');

# the background worker comes back
ok( $node->poll_query_until('postgres',
		q{SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'durable worker'}),
	'durable worker running after restart');

# signal 4 after the restart
signal_all($node, 4, @waiters);

# every timer fires; until the sleepers' workflow tasks are claimed, each
# run has exactly one, ready
ok( $node->poll_query_until('postgres',
		q{SELECT count(*) = 3 FROM durable.steps
		   WHERE kind = 'sleep' AND status = 'completed'}),
	'all timers fired after the restart');
is( $node->safe_psql('postgres',
		q{SELECT count(*), count(DISTINCT t.run_id), bool_and(t.state = 'ready')
		    FROM durable.tasks t JOIN durable.runs r USING (run_id)
		   WHERE r.workflow_type = 'sleeper'}),
	'3|3|t', 'one ready workflow task per fired timer');

my %after;
work_until_idle($node, \&workflow_code, \%after);
is_deeply([ map { $after{$_} // 0 } @sleepers ], [ 1, 1, 1 ],
	'each sleeper ran exactly one workflow task after its timer');

is( $node->safe_psql('postgres',
		q{SELECT string_agg(workflow_id || ' ' || status || ' ' || output::text, ', '
		                    ORDER BY workflow_id)
		    FROM durable.workflows}),
	'sleeper-1 completed "woke", sleeper-2 completed "woke", sleeper-3 completed "woke", '
	  . 'waiter-1 completed [1, 2, 3, 4], waiter-2 completed [1, 2, 3, 4], '
	  . 'waiter-3 completed [1, 2, 3, 4]',
	'every workflow completed; waiters got their signals in order');

is( $node->safe_psql('postgres',
		q{SELECT count(*), count(*) FILTER (WHERE status = 'completed'
		                                     AND resolved_at >= due_at)
		    FROM durable.steps WHERE kind = 'sleep'}),
	'3|3', 'each timer resolved once, not before it was due');

is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM durable.history
		   WHERE workflow_id LIKE 'sleeper-%' AND event_type = 'sleep_completed'}),
	'3', 'history: one sleep_completed per sleeper');

# each waiter's signal n was taken once, by step n
is( $node->safe_psql('postgres',
		q{SELECT count(*), count(*) FILTER (WHERE g.consumed_seq = (g.payload->>'n')::int),
		         count(DISTINCT (g.run_id, g.consumed_seq))
		    FROM durable.signals g}),
	'12|12|12', 'every signal delivered once, to the step of its turn');
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM durable.steps
		   WHERE kind = 'signal' AND (status <> 'completed' OR (result->>'n')::int <> seq)}),
	'0', 'every signal step resolved with the signal of its turn');

is($node->safe_psql('postgres', 'SELECT count(*) FROM durable.tasks'),
	'0', 'no task left over');

$node->stop;
done_testing();
