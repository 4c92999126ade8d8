-- metrics: durable.metrics() counts what committed (a rolled-back start
-- and a rolled-back savepoint count nothing), keeps histograms of
-- schedule-to-start and timer lateness, and counts tasks and open runs
-- from the tables; only admins and pg_monitor members read it.  Queues
-- start with "mtq", types with "mt-".
\i test/regress/common.sql
CREATE FUNCTION pg_temp.m(s text, l jsonb DEFAULT '{}') RETURNS float8 LANGUAGE sql AS $$
    SELECT coalesce(sum(value), 0) FROM durable.metrics() WHERE sample = s AND labels @> l $$;
SET durable.metrics_gauge_interval = 0;
SELECT durable.metrics_reset();
-- every family has HELP text and one kind; samples belong to their family
SELECT count(DISTINCT family) >= 4 AS families,
       bool_and(kind IN ('counter', 'gauge', 'histogram')) AS kinds,
       bool_and(sample LIKE family || '%') AS samples_in_family,
       bool_and(help <> '') AS helped
  FROM durable.metrics();

-- starts: committed ones only
SELECT count(durable.wf_start('mt-order', NULL, 'mt-' || i, 'mtq')) FROM generate_series(1, 3) i;
BEGIN;
SELECT durable.wf_start('mt-order', NULL, 'mt-rolled-back', 'mtq') IS NOT NULL AS started;
ROLLBACK;
BEGIN;
SAVEPOINT a;
SELECT durable.wf_start('mt-order', NULL, 'mt-savepoint', 'mtq') IS NOT NULL AS started;
ROLLBACK TO a;
SAVEPOINT b;
SELECT durable.wf_start('mt-order', NULL, 'mt-4', 'mtq') IS NOT NULL AS started;
RELEASE b;
COMMIT;
SELECT count(*) FROM durable.wf_start_many('mt-order', ARRAY['{}', '{}']::jsonb[], ARRAY['mt-5', 'mt-6'], 'mtq');
SELECT pg_temp.m('durable_workflows_started_total', '{"type": "mt-order"}') AS started,
       pg_temp.m('durable_workflows_started_total', '{"type": "mt-order", "namespace": "default"}') AS in_default;
-- gauges: 6 ready workflow tasks, 6 open runs of the namespace
SELECT pg_temp.m('durable_tasks', '{"queue": "mtq", "kind": "workflow", "state": "ready"}') AS ready,
       pg_temp.m('durable_tasks', '{"queue": "mtq", "state": "leased"}') AS leased,
       pg_temp.m('durable_oldest_ready_age_seconds', '{"queue": "mtq"}') >= 0 AS has_age,
       pg_temp.m('durable_runs_open', '{"namespace": "default"}') >=  6 AS open_runs;

-- claims, with their schedule-to-start latency
SET durable.clock_offset = '2s';
SELECT count(*) AS claimed FROM durable.task_poll('mtq', 'w1', 4);
SELECT pg_temp.m('durable_tasks_claimed_total', '{"queue": "mtq", "kind": "workflow"}') AS claimed,
       pg_temp.m('durable_schedule_to_start_seconds_count', '{"queue": "mtq"}') AS observed,
       pg_temp.m('durable_schedule_to_start_seconds_bucket', '{"queue": "mtq", "le": "1"}') AS within_1s,
       pg_temp.m('durable_schedule_to_start_seconds_bucket', '{"queue": "mtq", "le": "2.5"}') AS within_2_5s,
       pg_temp.m('durable_schedule_to_start_seconds_bucket', '{"queue": "mtq", "le": "+Inf"}') AS all_buckets,
       pg_temp.m('durable_schedule_to_start_seconds_sum', '{"queue": "mtq"}') BETWEEN 7.9 AND 9 AS sum_about_8s,
       pg_temp.m('durable_tasks', '{"queue": "mtq", "state": "leased"}') AS leased;
-- a rolled-back claim counts nothing
BEGIN;
SELECT count(*) AS claimed_then_rolled_back FROM durable.task_poll('mtq', 'w1', 1);
ROLLBACK;
SELECT pg_temp.m('durable_tasks_claimed_total', '{"queue": "mtq"}') AS still_claimed;

-- closes by status; a failed attempt that is retried; an expired lease
SELECT durable.task_complete(token, '"done"') FROM durable.tasks t JOIN durable.runs r USING (run_id)
 WHERE r.workflow_id = 'mt-1' AND t.state = 'leased';
SELECT durable.task_fail(token, '{"message": "flaky"}', true) FROM durable.tasks t JOIN durable.runs r USING (run_id)
 WHERE r.workflow_id = 'mt-2' AND t.state = 'leased';
SELECT durable.task_fail(token, '{"message": "broken"}', false) FROM durable.tasks t JOIN durable.runs r USING (run_id)
 WHERE r.workflow_id = 'mt-3' AND t.state = 'leased';
SELECT durable.wf_terminate('mt-5');
SET durable.clock_offset = '1h';
SELECT durable.tick() >= 1 AS ticked;
SELECT pg_temp.m('durable_workflows_closed_total', '{"type": "mt-order", "status": "completed"}') AS completed,
       pg_temp.m('durable_workflows_closed_total', '{"type": "mt-order", "status": "failed"}') AS failed,
       pg_temp.m('durable_workflows_closed_total', '{"type": "mt-order", "status": "terminated"}') AS terminated,
       pg_temp.m('durable_task_failures_total', '{"queue": "mtq", "kind": "workflow"}') AS failures,
       pg_temp.m('durable_task_retries_total', '{"queue": "mtq", "kind": "workflow"}') AS retries,
       pg_temp.m('durable_lease_expiries_total', '{"queue": "mtq", "kind": "workflow"}') AS expiries;

-- timers: a sleep fired an hour late
SELECT count(*) AS claimed FROM durable.task_poll('mtq', 'w2', 10);
SELECT durable.task_suspend(token, '[{"type": "sleep", "seq": 1, "duration": "1s"}]')
  FROM durable.tasks t JOIN durable.runs r USING (run_id) WHERE r.workflow_id = 'mt-6' AND t.state = 'leased';
-- an activity attempt that fails and is retried
SELECT durable.task_suspend(token, '[{"seq": 1, "type": "activity", "name": "charge", "queue": "mtq-act"}]')
  FROM durable.tasks t JOIN durable.runs r USING (run_id) WHERE r.workflow_id = 'mt-2' AND t.state = 'leased';
SELECT durable.task_fail(token, '{"message": "card declined"}', true) FROM durable.task_poll('mtq-act', 'w3');
SELECT pg_temp.m('durable_tasks_claimed_total', '{"queue": "mtq-act", "kind": "activity"}') AS activity_claimed,
       pg_temp.m('durable_task_failures_total', '{"queue": "mtq-act", "kind": "activity"}') AS activity_failures,
       pg_temp.m('durable_task_retries_total', '{"queue": "mtq-act", "kind": "activity"}') AS activity_retries,
       pg_temp.m('durable_tasks', '{"queue": "mtq-act", "kind": "activity", "state": "ready"}') AS in_backoff;
SET durable.clock_offset = '2h';
SELECT durable.tick() >= 1 AS ticked;
SELECT pg_temp.m('durable_timer_lateness_seconds_count') AS timers_fired,
       pg_temp.m('durable_timer_lateness_seconds_bucket', '{"le": "300"}') AS within_5min,
       pg_temp.m('durable_timer_lateness_seconds_sum') > 3000 AS late;
RESET durable.clock_offset;
SELECT count(durable.wf_terminate(workflow_id)) FROM durable.workflows WHERE queue = 'mtq' AND status = 'running';
SELECT pg_temp.m('durable_tasks', '{"queue": "mtq"}') AS tasks_left;

-- many gauge groups (400 queues) and long labels: types that share their
-- first 63 bytes are still two series
SELECT count(durable.wf_start('mt-many', NULL, 'mt-q' || i, 'mtq-' || i)) FROM generate_series(1, 400) i;
SELECT count(*) AS queue_gauges, sum(value) AS ready FROM durable.metrics()
 WHERE family = 'durable_tasks' AND labels->>'queue' LIKE 'mtq-%';
SELECT count(durable.wf_start(repeat('x', 70) || i, NULL, 'mt-long' || i, 'mtq')) FROM generate_series(1, 2) i;
SELECT count(*) AS series, sum(value) AS started, max(length(labels->>'type')) AS label_length,
       bool_and(labels->>'type' ~ '^x{54}~[0-9a-f]{8}$') AS prefix_and_hash
  FROM durable.metrics()
 WHERE family = 'durable_workflows_started_total' AND labels->>'type' LIKE 'xxx%';
SELECT count(durable.wf_terminate(workflow_id)) FROM durable.workflows
 WHERE (queue LIKE 'mtq-%' OR workflow_id LIKE 'mt-long%') AND status = 'running';

-- reset: counters start again
SELECT durable.metrics_reset();
SELECT pg_temp.m('durable_workflows_started_total', '{"type": "mt-order"}') AS after_reset;

-- rights: a client may not read them; a pg_monitor member may, but may not reset
CREATE ROLE regress_durable_mclient;
CREATE ROLE regress_durable_monitor IN ROLE pg_monitor;
SELECT durable.grant_client('regress_durable_mclient');
SET ROLE regress_durable_mclient;
SELECT pg_temp.errd($$SELECT count(*) FROM durable.metrics()$$);
SET ROLE regress_durable_monitor;
SELECT count(*) > 0 AS monitor_reads FROM durable.metrics();
SELECT pg_temp.errd($$SELECT durable.metrics_reset()$$);
RESET ROLE;
SELECT durable.revoke_all('regress_durable_mclient');
DROP ROLE regress_durable_mclient;
DROP ROLE regress_durable_monitor;
