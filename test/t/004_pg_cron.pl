# 004_pg_cron: durable without preloading, its periodic work run by pg_cron.
#
# The server preloads pg_cron and not durable: there is no durable
# background process, and a cron job calling durable.tick() is all that
# does the periodic work.  Before the job exists, a timer (a workflow
# sleeping 1 s), two expired leases (a workflow task and an activity
# attempt, each claimed for 1 s and abandoned) and a schedule due every
# second are set up, and seen to stay unhandled after they are due.  Then
# the job is created; pg_cron 1.4 (Debian 12) only schedules whole
# minutes, so the test waits for its first run (up to ~130 s, typically
# under a minute) and checks that this run handled all of them, in one
# transaction inside the run's time window (cron.job_run_details, from
# the minute it was due to its end_time); the test never calls
# durable.tick() itself.  A job that is missing, or that does not call
# durable.tick(), fails the test.  Finally the workflows are played to
# completion over psql (DurableTap).
use strict;
use warnings;

use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DurableTap;
use Time::HiRes qw(time usleep);

my $json = JSON::PP->new->canonical;

# the workflow code, played by DurableTap's work_round
sub workflow_code
{
	my ($type, $input, $journal) = @_;
	my %step = map { $_->{seq} => $_ } @$journal;

	if ($type eq 'sleeper')
	{
		# sleep(1 s); return "woke"
		return ('complete', '"woke"')
		  if $step{1} && $step{1}{status} eq 'completed';
		return ('suspend', '[]') if $step{1};
		return ('suspend',
			$json->encode([ { seq => 1, type => 'sleep', duration => '1s' } ]));
	}
	if ($type eq 'caller')
	{
		# return flaky() (an activity on queue acts)
		return ('complete', $json->encode($step{1}{result}))
		  if $step{1} && $step{1}{status} eq 'completed';
		return ('suspend', '[]') if $step{1};
		return ('suspend',
			$json->encode([ { seq => 1, type => 'activity', name => 'flaky', queue => 'acts' } ]));
	}
	return ('complete', '"done"') if $type eq 'leaser' || $type eq 'ticked';
	die "unknown workflow type $type";
}

my $pkglibdir = `pg_config --pkglibdir`;
chomp $pkglibdir;
if (!-e "$pkglibdir/pg_cron.so")
{
	fail("pg_cron is installed (Debian package postgresql-15-cron)");
	done_testing();
	exit;
}

my $node = PostgreSQL::Test::Cluster->new('pgcron');
$node->init;
# pg_cron connects over libpq to cron.host: the node's socket directory
# (or its TCP address)
my $host = $node->host;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_cron'
cron.database_name = 'postgres'
cron.host = '$host'
});
$node->start;

is($node->safe_psql('postgres', q{SHOW shared_preload_libraries}),
	'pg_cron', 'pg_cron is preloaded, durable is not');
$node->safe_psql('postgres', 'CREATE EXTENSION durable; CREATE EXTENSION pg_cron;');
like($node->safe_psql('postgres',
		q{SELECT extversion FROM pg_extension WHERE extname = 'pg_cron'}),
	qr/^1\.\d/, 'pg_cron installed');
ok( $node->poll_query_until('postgres',
		q{SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'pg_cron launcher'}),
	'pg_cron launcher running');

my $no_durable_process =
  q{SELECT count(*) FROM pg_stat_activity
     WHERE backend_type LIKE 'durable%' OR application_name LIKE 'durable%'};
is($node->safe_psql('postgres', $no_durable_process), '0', 'no durable background process');

# --- the work a tick has to do, set up before the cron job exists

# a timer: nap-1 suspends on a 1 s sleep; act-1 schedules an activity
$node->safe_psql('postgres',
	q{SELECT durable.wf_start('sleeper', NULL, 'nap-1');
	  SELECT durable.wf_start('caller', NULL, 'act-1');});
is_deeply(work_round($node, \&workflow_code), { 'nap-1' => 1, 'act-1' => 1 },
	'first workflow tasks of nap-1 and act-1 ran');

# two leases of 1 s, claimed in one transaction (a later poll would
# process the first one's expiry itself) and never finished
$node->safe_psql('postgres', q{SELECT durable.wf_start('leaser', NULL, 'lease-1')});
is( $node->safe_psql('postgres',
		q{BEGIN;
		  SELECT workflow_id || ' ' || kind || ' ' || attempt
		    FROM durable.task_poll('default', 'tap', 1, '1s');
		  SELECT workflow_id || ' ' || kind || ' ' || name || ' ' || attempt
		    FROM durable.task_poll('acts', 'tap', 1, '1s');
		  COMMIT;}),
	"lease-1 workflow 1\nact-1 activity flaky 1",
	'claimed the workflow task of lease-1 and the activity of act-1 for 1 s');

# a schedule due every second
$node->safe_psql('postgres',
	q{SELECT durable.schedule_create('ticker', 'every 1s', 'ticked')});

# wait until all of it is due
my $due_sql = q{SELECT greatest(
	  (SELECT max(due_at) FROM durable.steps WHERE kind = 'sleep'),
	  (SELECT max(visible_at) FROM durable.tasks WHERE state = 'leased'),
	  (SELECT next_fire_at FROM durable.schedules WHERE name = 'ticker')) < now()};
ok($node->poll_query_until('postgres', $due_sql), 'timer, leases and schedule are due');
sleep 1;

# nothing handles it: no background worker, no cron job yet
my $state_sql = q{
	SELECT 'nap-1 timer ' || s.status FROM durable.steps s JOIN durable.runs r USING (run_id)
	 WHERE r.workflow_id = 'nap-1' AND s.seq = 1
	UNION ALL
	SELECT r.workflow_id || ' ' || t.kind || ' task ' || t.state || ' attempt ' || t.attempt
	       || CASE WHEN t.token IS NULL THEN '' ELSE ' with token' END
	  FROM durable.tasks t JOIN durable.runs r USING (run_id)
	 WHERE r.workflow_id IN ('nap-1', 'lease-1', 'act-1')
	UNION ALL
	SELECT 'ticker fires ' || fires || ' workflows '
	       || (SELECT count(*) FROM durable.runs WHERE workflow_id LIKE 'ticker-%')
	  FROM durable.schedules WHERE name = 'ticker'
	UNION ALL
	SELECT 'events ' || count(*) FROM durable.events
	ORDER BY 1};
is( $node->safe_psql('postgres', $state_sql),
	join("\n",
		'act-1 activity task leased attempt 1 with token',
		'events 0',
		'lease-1 workflow task leased attempt 1 with token',
		'nap-1 timer pending',
		'ticker fires 0 workflows 0'),
	'before the cron job: nothing handled although everything is due');

# --- the cron job
my $jobid = 0;
$jobid = $node->safe_psql('postgres', q{SELECT cron.schedule('durable-tick', '* * * * *', 'SELECT durable.tick()')});
like($jobid, qr/^[1-9]\d*$/, "cron job durable-tick created (job $jobid)");
is( $node->safe_psql('postgres',
		q{SELECT jobname || ' ' || schedule || ' ' || command || ' '
		         || (username = current_user) || ' ' || active
		    FROM cron.job}),
	'durable-tick * * * * * SELECT durable.tick() true true',
	'cron.job has the job, run as the superuser that created it');

# pg_cron 1.4 fires at the next whole minute: wait for the first run to end
my $started = time;
my $run;
while (time - $started < 130)
{
	$run = $node->safe_psql('postgres',
		qq{SELECT command || '|' || status || '|' || coalesce(return_message, '')
		     FROM cron.job_run_details
		    WHERE jobid = $jobid AND status IN ('succeeded', 'failed')
		    ORDER BY runid LIMIT 1});
	last if $run ne '';
	usleep(500_000);
}
note sprintf('the first cron run ended %.0f s after the job was created', time - $started)
  if $run ne '';
is($run, 'SELECT durable.tick()|succeeded|1 row',
	'the cron job ran SELECT durable.tick() and succeeded');
if ($run eq '')
{
	diag('no cron run within 130 s; cron.job has '
		  . $node->safe_psql('postgres', 'SELECT count(*) FROM cron.job') . ' job(s)');
	$node->stop;
	done_testing();
	exit;
}
is($node->safe_psql('postgres', $no_durable_process), '0',
	'still no durable background process');

# --- everything was handled by that run of the job
# the run's time window: pg_cron 1.4 records start_time once the query is
# sent, a little after the job's transaction started, so the window opens
# at the whole minute the run was due
my $window = qq{(SELECT date_trunc('minute', start_time) AS start_time, end_time
                   FROM cron.job_run_details
                  WHERE jobid = $jobid AND status = 'succeeded'
                  ORDER BY runid LIMIT 1) w};
is( $node->safe_psql('postgres', $state_sql),
	join("\n",
		'act-1 activity task ready attempt 1',
		'events 2',
		'lease-1 workflow task ready attempt 1',
		'nap-1 timer completed',
		'nap-1 workflow task ready attempt 0',
		'ticker fires 1 workflows 1'),
	'after the cron run: timer fired, leases expired, schedule fired');
is( $node->safe_psql('postgres',
		qq{SELECT s.resolved_at BETWEEN w.start_time AND w.end_time
		     FROM durable.steps s JOIN durable.runs r USING (run_id), $window
		    WHERE r.workflow_id = 'nap-1' AND s.seq = 1}),
	't', 'the timer fired during the cron run');
is( $node->safe_psql('postgres',
		qq{SELECT string_agg(r.workflow_id || ' ' || e.event_type || ' '
		                     || coalesce(e.details->>'attempt', '?') || ' '
		                     || (e.created_at BETWEEN w.start_time AND w.end_time),
		                     ', ' ORDER BY r.workflow_id)
		     FROM durable.events e JOIN durable.runs r USING (run_id), $window}),
	'act-1 activity_attempt_timed_out 1 true, lease-1 workflow_task_timed_out 1 true',
	'both leases expired during the cron run: the activity attempt and the workflow task timed out');
is( $node->safe_psql('postgres',
		qq{SELECT count(*), bool_and(r.created_at BETWEEN w.start_time AND w.end_time),
		          bool_and(r.workflow_type = 'ticked')
		     FROM durable.runs r, $window WHERE r.workflow_id LIKE 'ticker-%'}),
	'1|t|t', 'the schedule started its workflow during the cron run');

is( $node->safe_psql('postgres',
		q{SELECT count(*), count(DISTINCT at) FROM (
		    SELECT s.resolved_at FROM durable.steps s JOIN durable.runs r USING (run_id)
		     WHERE r.workflow_id = 'nap-1' AND s.seq = 1
		    UNION ALL SELECT created_at FROM durable.events
		    UNION ALL SELECT created_at FROM durable.runs WHERE workflow_id LIKE 'ticker-%') x(at)}),
	'4|1', 'timer, both expiries and the scheduled start happened in one transaction');

# keep later runs of the job out of the rest of the test
$node->safe_psql('postgres',
	q{SELECT cron.unschedule('durable-tick'); SELECT durable.schedule_delete('ticker');});

# --- the workflows go on: the expired workflow task's next claim is
# attempt 2, the activity's retry is attempt 2 (after its 1 s backoff)
is( $node->safe_psql('postgres',
		q{SELECT t.attempt FROM durable.tasks t JOIN durable.runs r USING (run_id)
		   WHERE r.workflow_id = 'lease-1'}),
	'1', 'lease-1: the expired attempt is counted');
my %claims;
work_until_idle($node, \&workflow_code, \%claims);
ok( $node->poll_query_until('postgres',
		q{SELECT visible_at <= now() FROM durable.tasks WHERE queue = 'acts'}),
	'the activity retry is due');
my $act = $node->safe_psql('postgres',
	q{SELECT token || ' ' || name || ' ' || attempt FROM durable.task_poll('acts', 'tap')});
like($act, qr/^\d+ flaky 2$/, 'the activity retry is attempt 2');
my ($token) = split / /, $act;
$node->safe_psql('postgres', qq{SELECT durable.task_complete($token, '"flaked once"')});
work_until_idle($node, \&workflow_code, \%claims);

is( $node->safe_psql('postgres',
		q{SELECT string_agg(workflow_id || ' ' || status || ' ' || output::text, ', '
		                    ORDER BY workflow_id)
		    FROM durable.workflows WHERE workflow_id NOT LIKE 'ticker-%'}),
	'act-1 completed "flaked once", lease-1 completed "done", nap-1 completed "woke"',
	'every workflow completed');
is( $node->safe_psql('postgres',
		q{SELECT count(*), bool_and(status = 'completed') FROM durable.workflows
		   WHERE workflow_id LIKE 'ticker-%'}),
	'1|t', 'the scheduled workflow completed');
is($node->safe_psql('postgres', 'SELECT count(*) FROM durable.tasks'),
	'0', 'no task left over');

$node->stop;
done_testing();
