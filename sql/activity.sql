-- activity: activities on their queues, retry policies and timeouts,
-- heartbeat details across attempts, child workflows with parent-close
-- policies, and durable timers fired by durable.tick().  Time moves with
-- durable.clock_offset (absolute offsets from the real clock).  Ids start
-- with "act-", queues with "aq".

\i test/regress/common.sql
\i test/regress/tasks.sql
-- journal(workflow_id): the latest run's steps
CREATE FUNCTION pg_temp.journal(wid text)
RETURNS TABLE (seq int, kind text, name text, status text, attempt int, result jsonb, error jsonb)
LANGUAGE sql AS $$
    SELECT j.seq, j.kind, j.name, j.status, j.attempt, j.result, j.error FROM durable.journal j
     WHERE j.run_id = (SELECT max(run_id) FROM durable.runs WHERE workflow_id = wid) ORDER BY j.seq $$;
-- events(workflow_id): recorded (not derived) history events of the latest run
CREATE FUNCTION pg_temp.events(wid text)
RETURNS TABLE (event_type text, seq int, details jsonb)
LANGUAGE sql AS $$
    SELECT e.event_type, e.seq, e.details FROM durable.events e
     WHERE e.run_id = (SELECT max(run_id) FROM durable.runs WHERE workflow_id = wid) ORDER BY e.event_id $$;

--
-- an activity on another queue
--
SELECT durable.wf_start('order', '{"id": 1}', 'act-1', 'aq');
SELECT * FROM pg_temp.poll('aq');
SELECT durable.task_suspend(pg_temp.tok('act-1'),
    '[{"seq": 1, "type": "activity", "name": "charge", "queue": "aq-pay", "input": {"cents": 100}},
      {"seq": 2, "type": "activity", "name": "log"}]');
-- the workflow's queue gets the activity without a queue; the other one
-- waits on aq-pay
SELECT kind, workflow_id, name, seq, input, attempt FROM pg_temp.poll('aq', 5);
SELECT kind, workflow_id, name, seq, input, attempt FROM pg_temp.poll('aq-pay', 5);
SELECT queue, kind, state FROM durable.task_list WHERE workflow_id = 'act-1' ORDER BY seq;
-- completing it resolves its step and makes a workflow task ready
SELECT durable.task_complete(pg_temp.tok('act-1', 1), '{"charged": true}');
SELECT * FROM pg_temp.journal('act-1');
SELECT * FROM pg_temp.wtasks('act-1');
SELECT durable.task_complete(pg_temp.tok('act-1', 2), '"logged"');
SELECT * FROM pg_temp.wtasks('act-1');
SELECT kind, journal FROM pg_temp.poll('aq');
SELECT durable.task_complete(pg_temp.tok('act-1'), '"ok"');

--
-- retry policy: backoff, maximum interval, maximum attempts
--
SELECT durable.wf_start('order', NULL, 'act-retry', 'aq');
SELECT * FROM pg_temp.poll('aq');
SELECT durable.task_suspend(pg_temp.tok('act-retry'),
    '[{"seq": 1, "type": "activity", "name": "flaky", "queue": "aq-act",
       "retry": {"initial_interval": "10s", "backoff_coefficient": 3,
                 "maximum_interval": "60s", "maximum_attempts": 4}}]');
SELECT seq, attempt FROM pg_temp.poll('aq-act');
SELECT durable.task_fail(pg_temp.tok('act-retry', 1), '{"type": "Timeout", "message": "try 1"}');
-- not before 10 s
SET durable.clock_offset = '5s';
SELECT seq, attempt FROM pg_temp.poll('aq-act');
SET durable.clock_offset = '10s';
SELECT seq, attempt FROM pg_temp.poll('aq-act');
-- wf_describe shows the attempt under way
SELECT jsonb_path_query(durable.wf_describe('act-retry'), '$.pending_steps[*] ? (@.seq == 1)') - 'scheduled_at' AS pending;
SELECT durable.task_fail(pg_temp.tok('act-retry', 1), '{"type": "Timeout", "message": "try 2"}');
-- then 30 s (10 s x 3)
SET durable.clock_offset = '30s';
SELECT seq, attempt FROM pg_temp.poll('aq-act');
SET durable.clock_offset = '41s';
SELECT seq, attempt FROM pg_temp.poll('aq-act');
SELECT durable.task_fail(pg_temp.tok('act-retry', 1), '{"type": "Timeout", "message": "try 3"}');
-- then 60 s (90 s capped by maximum_interval)
SET durable.clock_offset = '90s';
SELECT seq, attempt FROM pg_temp.poll('aq-act');
SET durable.clock_offset = '102s';
SELECT seq, attempt FROM pg_temp.poll('aq-act');
-- the workflow is not woken by retries
SELECT * FROM pg_temp.wtasks('act-retry');
-- the fourth attempt is the last: its error is the step's error
SELECT durable.task_fail(pg_temp.tok('act-retry', 1), '{"type": "Timeout", "message": "try 4"}');
SELECT * FROM pg_temp.journal('act-retry');
SELECT * FROM pg_temp.events('act-retry');
SELECT * FROM pg_temp.wtasks('act-retry');
-- the workflow sees the failure in its journal
SELECT kind, journal FROM pg_temp.poll('aq');
SELECT durable.task_fail(pg_temp.tok('act-retry'), '{"type": "ActivityError", "message": "flaky gave up"}', false);
SELECT status, error FROM durable.runs WHERE workflow_id = 'act-retry';
RESET durable.clock_offset;

-- non-retryable error types, and retryable = false, fail at once
SELECT durable.wf_start('order', NULL, 'act-nonretry', 'aq');
SELECT * FROM pg_temp.poll('aq');
SELECT durable.task_suspend(pg_temp.tok('act-nonretry'),
    '[{"seq": 1, "type": "activity", "name": "pay", "queue": "aq-act",
       "retry": {"non_retryable_error_types": ["CardDeclined", "Fraud"]}},
      {"seq": 2, "type": "activity", "name": "pay", "queue": "aq-act",
       "retry": {"non_retryable_error_types": ["CardDeclined"]}},
      {"seq": 3, "type": "activity", "name": "pay", "queue": "aq-act",
       "retry": {"non_retryable_error_types": ["CardDeclined"]}}]');
SELECT seq, attempt FROM pg_temp.poll('aq-act', 3) ORDER BY seq;
SELECT durable.task_fail(pg_temp.tok('act-nonretry', 1), '{"type": "Fraud", "message": "stolen card"}');
SELECT durable.task_fail(pg_temp.tok('act-nonretry', 2), '{"type": "NetworkError", "message": "reset"}', false);
-- another type is retried (default policy: 1 s)
SELECT durable.task_fail(pg_temp.tok('act-nonretry', 3), '{"type": "NetworkError", "message": "reset"}');
SELECT * FROM pg_temp.journal('act-nonretry');
SELECT event_type, seq, details FROM pg_temp.events('act-nonretry');
SELECT * FROM pg_temp.wtasks('act-nonretry');
SELECT durable.wf_terminate('act-nonretry');

-- the default retry policy: 1 s, doubling, capped at 100 s, unlimited
SELECT durable.wf_start('order', NULL, 'act-default', 'aq');
SELECT * FROM pg_temp.poll('aq');
SELECT durable.task_suspend(pg_temp.tok('act-default'), '[{"seq": 1, "type": "activity", "name": "x", "queue": "aq-act"}]');
SELECT seq, attempt FROM pg_temp.poll('aq-act');
SELECT durable.task_fail(pg_temp.tok('act-default', 1), '"e1"');
SET durable.clock_offset = '1s';
SELECT seq, attempt FROM pg_temp.poll('aq-act');
SELECT durable.task_fail(pg_temp.tok('act-default', 1), '"e2"');
SELECT t.state, t.visible_at - t.created_at AS backoff
  FROM durable.tasks t JOIN durable.runs r USING (run_id) WHERE r.workflow_id = 'act-default' AND t.seq = 1;
SET durable.clock_offset = '3s';
SELECT seq, attempt FROM pg_temp.poll('aq-act');
SELECT details->'retry_in_ms' AS retry_in_ms FROM pg_temp.events('act-default');
RESET durable.clock_offset;
SELECT durable.wf_terminate('act-default');

--
-- heartbeat details survive into the next attempt
--
SELECT durable.wf_start('upload', NULL, 'act-hb', 'aq');
SELECT * FROM pg_temp.poll('aq');
SELECT durable.task_suspend(pg_temp.tok('act-hb'),
    '[{"seq": 1, "type": "activity", "name": "upload", "queue": "aq-act", "retry": {"initial_interval": 1}}]');
SELECT seq, attempt, heartbeat FROM pg_temp.poll('aq-act');
SELECT durable.task_heartbeat(pg_temp.tok('act-hb', 1), '{"uploaded_parts": 3}');
SELECT durable.task_fail(pg_temp.tok('act-hb', 1), '{"type": "IOError", "message": "connection lost"}');
SET durable.clock_offset = '2s';
SELECT seq, attempt, heartbeat FROM pg_temp.poll('aq-act');
SELECT durable.task_complete(pg_temp.tok('act-hb', 1), '{"parts": 5}');
RESET durable.clock_offset;
SELECT * FROM pg_temp.journal('act-hb');
SELECT durable.wf_terminate('act-hb');

--
-- start_to_close: the attempt's lease; when it runs out, tick retries it
--
SELECT durable.wf_start('order', NULL, 'act-s2c', 'aq');
SELECT * FROM pg_temp.poll('aq');
SELECT durable.task_suspend(pg_temp.tok('act-s2c'),
    '[{"seq": 1, "type": "activity", "name": "slow", "queue": "aq-act", "start_to_close": "20s",
       "retry": {"initial_interval": "5s", "maximum_attempts": 2}}]');
-- the lease is the start_to_close timeout, not the poll's 30 s
BEGIN;
SELECT token AS s2c_tok, lease_until FROM durable.task_poll('aq-act', 'worker-1', 1, '30 s') \gset
SELECT :'lease_until'::timestamptz = now() + interval '20 s' AS lease_is_start_to_close;
COMMIT;
-- a heartbeat cannot stretch the attempt past start_to_close
BEGIN;
SELECT durable.task_heartbeat(:s2c_tok, NULL, '1 hour');
SELECT visible_at = claimed_at + interval '20 s' AS capped FROM durable.tasks WHERE token = :s2c_tok;
COMMIT;
SET durable.clock_offset = '21s';
SELECT durable.tick() > 0 AS ticked;
SELECT * FROM pg_temp.events('act-s2c');
SELECT * FROM pg_temp.wtasks('act-s2c');
SELECT pg_temp.err(format('SELECT durable.task_complete(%s, %L)', :s2c_tok, '"too late"'));
SET durable.clock_offset = '27s';
SELECT seq, attempt FROM pg_temp.poll('aq-act');
-- the second attempt also times out: the step fails with a timeout error
SET durable.clock_offset = '48s';
SELECT durable.tick() > 0 AS ticked;
SELECT * FROM pg_temp.journal('act-s2c');
SELECT kind, journal FROM pg_temp.poll('aq');
SELECT durable.task_complete(pg_temp.tok('act-s2c'), '"gave up"');
RESET durable.clock_offset;

-- heartbeat timeout: an attempt that stops heartbeating times out early
SELECT durable.wf_start('order', NULL, 'act-hbt', 'aq');
SELECT * FROM pg_temp.poll('aq');
SELECT durable.task_suspend(pg_temp.tok('act-hbt'),
    '[{"seq": 1, "type": "activity", "name": "beat", "queue": "aq-act", "heartbeat": "10s",
       "retry": {"maximum_attempts": 1}}]');
BEGIN;
SELECT token AS hbt_tok, lease_until FROM durable.task_poll('aq-act', 'worker-1', 1, '5 min') \gset
SELECT :'lease_until'::timestamptz = now() + interval '10 s' AS lease_is_heartbeat_timeout;
COMMIT;
SET durable.clock_offset = '8s';
SELECT durable.task_heartbeat(:hbt_tok, '{"at": 8}', '5 min');
SET durable.clock_offset = '15s';
SELECT durable.tick() >= 0 AS ticked;
SELECT status FROM pg_temp.journal('act-hbt');
SET durable.clock_offset = '19s';
SELECT durable.tick() > 0 AS ticked;
SELECT * FROM pg_temp.journal('act-hbt');
RESET durable.clock_offset;
SELECT durable.wf_terminate('act-hbt');

--
-- schedule_to_close: a deadline over all attempts
--
SELECT durable.wf_start('order', NULL, 'act-sched', 'aq');
SELECT * FROM pg_temp.poll('aq');
SELECT durable.task_suspend(pg_temp.tok('act-sched'),
    '[{"seq": 1, "type": "activity", "name": "a", "queue": "aq-act", "schedule_to_close": "15s",
       "retry": {"initial_interval": "10s"}},
      {"seq": 2, "type": "activity", "name": "b", "queue": "aq-nobody", "schedule_to_close": "1m"},
      {"seq": 3, "type": "activity", "name": "c", "queue": "aq-nobody", "schedule_to_start": "5s"},
      {"seq": 4, "type": "activity", "name": "d", "queue": "aq-act", "schedule_to_start": "5s", "schedule_to_close": "2m"}]');
SELECT seq, attempt FROM pg_temp.poll('aq-act', 5, '5 min') ORDER BY seq;
-- seq 1: a retry in 10 s still fits in 15 s
SELECT durable.task_fail(pg_temp.tok('act-sched', 1), '"first"');
SET durable.clock_offset = '11s';
SELECT seq, attempt FROM pg_temp.poll('aq-act');
-- the next retry would start after the deadline: the step fails now
SELECT durable.task_fail(pg_temp.tok('act-sched', 1), '"second"');
SELECT seq, status, attempt, error FROM pg_temp.journal('act-sched') WHERE seq = 1;
-- seq 3 was never started within 5 s; seq 4 was, so it goes on
SELECT durable.tick() > 0 AS ticked;
SELECT seq, status, error FROM pg_temp.journal('act-sched');
-- seq 2 was never picked up at all: it times out after 1 min
SET durable.clock_offset = '50s';
SELECT durable.tick() >= 0 AS ticked;
SELECT seq, status FROM pg_temp.journal('act-sched') WHERE seq = 2;
SET durable.clock_offset = '61s';
SELECT durable.tick() > 0 AS ticked;
SELECT seq, status, error FROM pg_temp.journal('act-sched') WHERE seq = 2;
-- seq 4 keeps heartbeating, but its schedule_to_close deadline ends it
SET durable.clock_offset = '100s';
SELECT durable.task_heartbeat(pg_temp.tok('act-sched', 4), NULL, '5 min');
SET durable.clock_offset = '121s';
SELECT durable.tick() > 0 AS ticked;
SELECT seq, status, error FROM pg_temp.journal('act-sched') WHERE seq = 4;
SELECT pg_temp.err(format('SELECT durable.task_complete(%s)', pg_temp.tok('act-sched', 4)));
-- each timeout is in the history like any failed attempt: attempt, error, final
SELECT event_type, seq, details->'error'->>'timeout_type' AS timeout_type, details->'final' AS final
  FROM pg_temp.events('act-sched') WHERE event_type = 'activity_timed_out';
SELECT * FROM pg_temp.wtasks('act-sched');
RESET durable.clock_offset;
SELECT durable.wf_terminate('act-sched');

--
-- durable timers
--
SELECT durable.wf_start('nap', NULL, 'act-sleep', 'aq');
SELECT * FROM pg_temp.poll('aq');
SELECT to_char((now() + interval '2 hours') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS until \gset
SELECT durable.task_suspend(pg_temp.tok('act-sleep'), format(
    '[{"seq": 1, "type": "sleep", "duration": "1h"},
      {"seq": 2, "type": "sleep", "name": "nap", "until": "%s"},
      {"seq": 3, "type": "sleep", "duration": 90}]', :'until')::jsonb);
SELECT seq, name, CASE WHEN name <> 'nap' THEN due_at - scheduled_at END AS sleeps,
       due_at = :'until'::timestamptz AS due_until
  FROM durable.journal WHERE workflow_id = 'act-sleep' ORDER BY seq;
SET durable.clock_offset = '59min';
SELECT durable.tick() >= 0 AS ticked;
SELECT seq, status FROM pg_temp.journal('act-sleep');
SET durable.clock_offset = '61min';
SELECT durable.tick() > 0 AS ticked;
SELECT seq, status, result FROM pg_temp.journal('act-sleep');
SELECT kind, journal FROM pg_temp.poll('aq');
SELECT durable.task_suspend(pg_temp.tok('act-sleep'), '[]');
SET durable.clock_offset = '121min';
SELECT durable.tick() > 0 AS ticked;
SELECT kind, journal FROM pg_temp.poll('aq');
SELECT durable.task_complete(pg_temp.tok('act-sleep'), '"rested"');
RESET durable.clock_offset;

--
-- child workflows
--
SELECT durable.wf_start('parent', '{"n": 2}', 'act-parent', 'aq');
SELECT * FROM pg_temp.poll('aq');
SELECT durable.task_suspend(pg_temp.tok('act-parent'),
    '[{"seq": 1, "type": "child", "name": "kid", "input": {"k": 1}, "workflow_id": "act-kid-1"},
      {"seq": 2, "type": "child", "name": "kid", "input": {"k": 2}, "queue": "aq-kids"},
      {"seq": 3, "type": "child", "name": "kid", "input": {"k": 3}, "workflow_id": "act-kid-3"}]');
SELECT workflow_id ~ '^child/[0-9]+/2$' AS generated_id, workflow_type, queue, status, parent_run_id IS NOT NULL AS has_parent
  FROM durable.workflows WHERE workflow_type = 'kid' ORDER BY run_id;
-- the children run like any workflow
SELECT kind, workflow_id, input FROM pg_temp.poll('aq', 5) ORDER BY workflow_id;
SELECT kind, input FROM pg_temp.poll('aq-kids');
SELECT durable.task_complete(pg_temp.tok('act-kid-1'), '{"kid": 1}');
SELECT durable.task_fail(pg_temp.tok('act-kid-3'), '{"type": "KidError", "message": "no"}', false);
-- their results resolve the parent's steps
SELECT seq, kind, name, status, result, error FROM pg_temp.journal('act-parent');
SELECT kind, journal FROM pg_temp.poll('aq');
-- a child whose id is already running is a DU006 for the whole suspend,
-- which changes nothing
SELECT durable.wf_start('other', NULL, 'act-busy', 'aq-busy');
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 4, "type": "child", "name": "kid", "workflow_id": "act-busy"}]')$$, pg_temp.tok('act-parent')));
SELECT count(*) AS parent_steps FROM durable.journal WHERE workflow_id = 'act-parent';
SELECT durable.wf_terminate('act-busy');
-- replaying the child command does not start it again
SELECT durable.task_suspend(pg_temp.tok('act-parent'),
    '[{"seq": 1, "type": "child", "name": "kid", "input": {"k": 1}, "workflow_id": "act-kid-1"}]');
SELECT count(*) AS kid_1_runs FROM durable.runs WHERE workflow_id = 'act-kid-1';

-- parent-close policies: terminate (the default), request_cancel, abandon
SELECT durable.wf_start('parent', NULL, 'act-p2', 'aq');
SELECT * FROM pg_temp.poll('aq');
SELECT durable.task_suspend(pg_temp.tok('act-p2'),
    '[{"seq": 1, "type": "child", "name": "kid", "workflow_id": "act-p2-term", "queue": "aq-kids"},
      {"seq": 2, "type": "child", "name": "kid", "workflow_id": "act-p2-cancel", "queue": "aq-kids", "parent_close_policy": "request_cancel"},
      {"seq": 3, "type": "child", "name": "kid", "workflow_id": "act-p2-abandon", "queue": "aq-kids", "parent_close_policy": "abandon"},
      {"seq": 4, "type": "child", "name": "kid", "workflow_id": "act-p2-explicit", "queue": "aq-kids", "parent_close_policy": "terminate"}]');
SELECT durable.wf_terminate('act-p2', 'shutting down');
SELECT workflow_id, status, cancel_requested, error FROM durable.workflows
 WHERE workflow_id LIKE 'act-p2%' ORDER BY run_id;
SELECT seq, status FROM pg_temp.journal('act-p2');
-- the cancelled child ends later; its parent is closed, nothing changes there
SELECT kind, workflow_id, cancel_requested FROM pg_temp.poll('aq-kids', 5) ORDER BY workflow_id;
SELECT durable.task_fail(pg_temp.tok('act-p2-cancel'), '"cancelled"', false);
SELECT durable.task_complete(pg_temp.tok('act-p2-abandon'), '"still here"');
SELECT workflow_id, status FROM durable.workflows WHERE workflow_id LIKE 'act-p2%' ORDER BY run_id;
SELECT seq, status FROM pg_temp.journal('act-p2');

-- cancelling a parent asks its running children to cancel too
SELECT durable.wf_start('parent', NULL, 'act-p3', 'aq');
SELECT * FROM pg_temp.poll('aq');
SELECT durable.task_suspend(pg_temp.tok('act-p3'),
    '[{"seq": 1, "type": "child", "name": "kid", "workflow_id": "act-p3-kid", "queue": "aq-kids"}]');
SELECT durable.wf_cancel('act-p3');
SELECT workflow_id, status, cancel_requested FROM durable.workflows WHERE workflow_id LIKE 'act-p3%' ORDER BY run_id;
-- the child gives up as cancelled: the parent's step fails with that
SELECT kind, workflow_id, cancel_requested FROM pg_temp.poll('aq-kids');
SELECT durable.task_fail(pg_temp.tok('act-p3-kid'), '{"type": "cancelled", "message": "kid cancelled"}', false);
SELECT seq, status, error FROM pg_temp.journal('act-p3');
SELECT kind, workflow_id, journal, cancel_requested FROM pg_temp.poll('aq');
SELECT durable.task_fail(pg_temp.tok('act-p3'), '{"type": "cancelled", "message": "parent cancelled"}', false);
SELECT durable.wf_status('act-p3');

-- the first parent finishes; seq 2's child is still running and is
-- terminated with it
SELECT seq, status FROM pg_temp.journal('act-parent');
SELECT durable.task_complete(pg_temp.tok(workflow_id), '"kid 2 done"')
  FROM durable.runs WHERE workflow_type = 'kid' AND parent_run_id = (SELECT max(run_id) FROM durable.runs WHERE workflow_id = 'act-parent')
   AND workflow_id LIKE 'child/%';
SELECT kind, journal FROM pg_temp.poll('aq');
SELECT durable.task_complete(pg_temp.tok('act-parent'), '"all kids done"');
SELECT durable.wf_result('act-parent');

--
-- invariants
--
SELECT count(*) AS open_runs FROM durable.runs
 WHERE (workflow_id LIKE 'act-%' OR workflow_type = 'kid') AND status = 'running';
SELECT count(*) AS tasks_of_closed_runs FROM durable.tasks t JOIN durable.runs r USING (run_id) WHERE r.status <> 'running';
SELECT count(*) AS pending_steps_of_closed_runs FROM durable.steps s JOIN durable.runs r USING (run_id)
 WHERE r.status <> 'running' AND s.status = 'pending';
