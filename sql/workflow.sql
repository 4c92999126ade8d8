-- workflow: the client calls (wf_start, wf_status, wf_result, wf_history,
-- wf_describe, wf_cancel, wf_terminate, wf_signal) and namespaces.
-- Ids start with "wf-", queues with "wfq"; nothing printed depends on
-- the clock, tokens or run ids.

-- err(statement): run it, return 'ok' or 'SQLSTATE: message' (token and
-- run numbers masked)
\i test/regress/common.sql
-- poll(queue, n, lease) and tok(workflow_id, seq): the shared worker helpers
\i test/regress/tasks.sql
-- runs(workflow_id): every run of it, oldest first
CREATE FUNCTION pg_temp.runs(wid text)
RETURNS TABLE (status text, output jsonb, error jsonb, cancel_requested boolean)
LANGUAGE sql AS $$
    SELECT status, output, error, cancel_requested FROM durable.runs
     WHERE workflow_id = wid AND namespace = current_setting('durable.namespace')
     ORDER BY run_id $$;

--
-- wf_start
--
-- a generated workflow id is a time-ordered UUID (version 7, its first 48
-- bits the Unix time in ms), so an id made in a later ms sorts later
SELECT durable.wf_start('greet', '{"name": "Ada"}', queue => 'wfq') AS gen_id \gset
SELECT :'gen_id' ~ '^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' AS is_uuid_v7,
       abs(('x' || lpad(replace(left(:'gen_id', 13), '-', ''), 16, '0'))::bit(64)::bigint
           - (extract(epoch FROM clock_timestamp()) * 1000)::bigint) < 60000 AS unix_ms_now,
       durable.wf_status(:'gen_id') AS status;
SELECT pg_sleep(0.002);
SELECT durable.wf_start('greet', NULL, queue => 'wfq') AS gen_id2 \gset
SELECT :'gen_id2' > :'gen_id' AS later_sorts_later;
SELECT durable.wf_terminate(:'gen_id2', 'not needed');
-- one run and one ready workflow task on its queue
SELECT r.workflow_type, r.queue, r.input, r.priority, t.kind, t.seq, t.state, t.queue AS task_queue
  FROM durable.runs r JOIN durable.tasks t USING (run_id)
 WHERE r.workflow_id = :'gen_id';
SELECT durable.wf_terminate(:'gen_id', 'not needed');

-- an explicit id is returned as given
SELECT durable.wf_start('greet', '{"name": "Bob"}', 'wf-1', 'wfq');
-- the id is taken while the run is open: fail (the default policy) -> DU006
SELECT pg_temp.err($$SELECT durable.wf_start('greet', NULL, 'wf-1', 'wfq')$$);
SELECT pg_temp.err($$SELECT durable.wf_start('greet', NULL, 'wf-1', 'wfq', '{"id_conflict_policy": "fail"}')$$);
-- use_existing returns the open run instead of starting another
SELECT durable.wf_start('greet', '{"other": true}', 'wf-1', 'wfq', '{"id_conflict_policy": "use_existing"}');
SELECT * FROM pg_temp.runs('wf-1');
-- reject_duplicate is about closed runs; an open one is still a conflict
SELECT pg_temp.err($$SELECT durable.wf_start('greet', NULL, 'wf-1', 'wfq', '{"id_reuse_policy": "reject_duplicate"}')$$);
-- terminate_existing closes the open run as terminated and starts another
SELECT durable.wf_start('greet', '{"name": "Old"}', 'wf-te', 'wfq');
SELECT durable.wf_start('greet', '{"name": "New"}', 'wf-te', 'wfq', '{"id_conflict_policy": "terminate_existing"}');
SELECT r.status, r.input, r.error->>'type' AS error_type, t.state AS task
  FROM durable.runs r LEFT JOIN durable.tasks t USING (run_id)
 WHERE r.workflow_id = 'wf-te' ORDER BY r.run_id;
SELECT event_type, details FROM durable.wf_history('wf-te') WHERE event_type = 'terminate_requested';
SELECT durable.wf_terminate('wf-te');

-- the worker runs it: workflow task, complete with an output
SELECT * FROM pg_temp.poll('wfq');
SELECT durable.wf_result('wf-1') IS NULL AS result_null_while_running;
SELECT durable.wf_result('wf-1', '20 ms') IS NULL AS result_null_after_wait;
SELECT durable.task_complete(pg_temp.tok('wf-1'), '{"greeting": "Hello, Bob"}');
SELECT durable.wf_status('wf-1'), durable.wf_result('wf-1');
SELECT count(*) AS tasks_left FROM durable.tasks t JOIN durable.runs r USING (run_id) WHERE r.workflow_id = 'wf-1';

-- id reuse policies once the run is closed
SELECT pg_temp.err($$SELECT durable.wf_start('greet', NULL, 'wf-1', 'wfq', '{"id_reuse_policy": "reject_duplicate"}')$$);
SELECT pg_temp.err($$SELECT durable.wf_start('greet', NULL, 'wf-1', 'wfq', '{"id_reuse_policy": "allow_duplicate_failed_only"}')$$);
-- allow_duplicate (the default) starts a new run under the same id
SELECT durable.wf_start('greet', '{"name": "Cy"}', 'wf-1', 'wfq');
SELECT * FROM pg_temp.runs('wf-1');
-- the latest run decides status and result
SELECT durable.wf_status('wf-1'), durable.wf_result('wf-1') IS NULL AS result_null;
-- fail the second run (non-retryable workflow task failure)
SELECT * FROM pg_temp.poll('wfq');
SELECT durable.task_fail(pg_temp.tok('wf-1'), '{"type": "ValueError", "message": "no Cy"}', false);
SELECT durable.wf_status('wf-1');
SELECT pg_temp.errd($$SELECT durable.wf_result('wf-1')$$);
-- after a failed run, allow_duplicate_failed_only allows a new one
SELECT durable.wf_start('greet', NULL, 'wf-1', 'wfq', '{"id_reuse_policy": "allow_duplicate_failed_only"}');
SELECT status FROM pg_temp.runs('wf-1');
SELECT durable.wf_terminate('wf-1');
-- ... and a terminated run counts as not completed, too
SELECT pg_temp.err($$SELECT durable.wf_start('greet', NULL, 'wf-1', 'wfq', '{"id_reuse_policy": "allow_duplicate_failed_only"}')$$);
SELECT status FROM pg_temp.runs('wf-1');
SELECT durable.wf_terminate('wf-1');

-- request_id: retrying the same start returns the same run, not a conflict
SELECT durable.wf_start('pay', '{"amount": 5}', 'wf-req', 'wfq', '{"request_id": "req-1"}');
SELECT durable.wf_start('pay', '{"amount": 5}', 'wf-req', 'wfq', '{"request_id": "req-1"}');
SELECT count(*) AS runs FROM durable.runs WHERE workflow_id = 'wf-req';
-- another request for the same open id is a conflict
SELECT pg_temp.err($$SELECT durable.wf_start('pay', NULL, 'wf-req', 'wfq', '{"request_id": "req-2"}')$$);
-- still the same run after it closed: a late retry does not start it twice
SELECT * FROM pg_temp.poll('wfq');
SELECT durable.task_complete(pg_temp.tok('wf-req'), '"paid"');
SELECT durable.wf_start('pay', '{"amount": 5}', 'wf-req', 'wfq', '{"request_id": "req-1"}');
SELECT count(*) AS runs, durable.wf_result('wf-req') FROM durable.runs WHERE workflow_id = 'wf-req';

-- a start inside a transaction that rolls back leaves nothing behind
BEGIN;
SELECT durable.wf_start('greet', NULL, 'wf-rollback', 'wfq');
SELECT durable.wf_status('wf-rollback');
ROLLBACK;
SELECT count(*) AS runs FROM durable.runs WHERE workflow_id = 'wf-rollback';
SELECT count(*) AS tasks FROM durable.tasks WHERE queue = 'wfq';
SELECT pg_temp.err($$SELECT durable.wf_status('wf-rollback')$$);
-- ... and one that commits starts it with the business write
BEGIN;
SELECT durable.wf_start('greet', NULL, 'wf-commit', 'wfq');
COMMIT;
SELECT durable.wf_status('wf-commit');
SELECT durable.wf_terminate('wf-commit');

-- start_delay: the first workflow task is not ready before the delay
SELECT durable.wf_start('later', NULL, 'wf-delay', 'wfq', '{"start_delay": "1h"}');
SELECT * FROM pg_temp.poll('wfq');
SET durable.clock_offset = '59min';
SELECT * FROM pg_temp.poll('wfq');
SET durable.clock_offset = '61min';
SELECT * FROM pg_temp.poll('wfq');
SELECT durable.task_complete(pg_temp.tok('wf-delay'), '"late"');
RESET durable.clock_offset;
SELECT durable.wf_result('wf-delay');

--
-- wf_history and wf_describe of a run with steps
--
SELECT durable.wf_start('order', '{"item": 7}', 'wf-hist', 'wfq');
SELECT * FROM pg_temp.poll('wfq');
SELECT durable.step_record(pg_temp.tok('wf-hist'), 1, 'reserve', '{"ok": true}');
SELECT durable.task_suspend(pg_temp.tok('wf-hist'),
    '[{"seq": 2, "type": "activity", "name": "charge", "queue": "wfq-act", "input": {"cents": 700}},
      {"seq": 3, "type": "sleep", "duration": "1h"}]');
SELECT d->>'status' AS status, d->'cancel_requested' AS cancel_requested, d->'input' AS input,
       d->'steps' AS steps,
       (SELECT jsonb_agg(e - 'scheduled_at' - 'due_at') FROM jsonb_array_elements(d->'pending_steps') e) AS pending,
       (d->'pending_steps'->1) ? 'due_at' AS sleep_has_due
  FROM durable.wf_describe('wf-hist') d;
SELECT * FROM pg_temp.poll('wfq-act');
SELECT durable.task_complete(pg_temp.tok('wf-hist', 2), '{"charged": 700}');
SELECT * FROM pg_temp.poll('wfq');
SELECT durable.task_complete(pg_temp.tok('wf-hist'), '"shipped"');
SELECT event_type, seq, details FROM durable.wf_history('wf-hist');
-- every event belongs to the one run, and times never go backwards
SELECT count(DISTINCT run_id) AS runs,
       bool_and(event_time >= prev) AS ordered
  FROM (SELECT run_id, event_time, lag(event_time, 1, event_time) OVER () AS prev
          FROM durable.wf_history('wf-hist')) h;
SELECT d->>'status' AS status, d->'output' AS output, d->'pending_steps' AS pending, d->'steps' AS steps,
       (d->>'closed_at') IS NOT NULL AS closed
  FROM durable.wf_describe('wf-hist') d;
SELECT pg_temp.err($$SELECT durable.wf_describe('wf-nope')$$);
SELECT pg_temp.err($$SELECT * FROM durable.wf_history('wf-nope')$$);
SELECT pg_temp.err($$SELECT durable.wf_status('wf-nope')$$);
SELECT pg_temp.err($$SELECT durable.wf_result('wf-nope')$$);

--
-- wf_cancel: cooperative; pending timers and signal waits resolve as
-- cancelled, the next workflow task sees cancel_requested
--
SELECT durable.wf_start('waiter', NULL, 'wf-cancel', 'wfq');
SELECT * FROM pg_temp.poll('wfq');
SELECT durable.task_suspend(pg_temp.tok('wf-cancel'),
    '[{"seq": 1, "type": "sleep", "duration": "1d"},
      {"seq": 2, "type": "signal", "name": "go"},
      {"seq": 3, "type": "activity", "name": "slow", "queue": "wfq-act"}]');
SELECT count(*) AS ready_workflow_tasks FROM durable.tasks t JOIN durable.runs r USING (run_id)
 WHERE r.workflow_id = 'wf-cancel' AND t.seq = 0;
SELECT durable.wf_cancel('wf-cancel', 'customer changed their mind');
SELECT status, cancel_requested FROM pg_temp.runs('wf-cancel');
-- the timer and the signal wait are cancelled; the activity goes on (it
-- learns of the cancel through its heartbeat)
SELECT seq, kind, name, status, error FROM durable.journal WHERE workflow_id = 'wf-cancel' ORDER BY seq;
SELECT * FROM pg_temp.poll('wfq');
-- cancelling again changes nothing
SELECT durable.wf_cancel('wf-cancel');
SELECT count(*) AS cancel_events FROM durable.wf_history('wf-cancel') WHERE event_type = 'cancel_requested';
SELECT * FROM pg_temp.poll('wfq-act');
SELECT durable.task_heartbeat(pg_temp.tok('wf-cancel', 3)) AS activity_sees_cancel;
SELECT durable.task_fail(pg_temp.tok('wf-cancel', 3), '{"type": "cancelled", "message": "gave up"}', false);
-- the activity's failure resolved step 3 while the workflow task is
-- leased: no second workflow task beside it
SELECT * FROM pg_temp.poll('wfq');
-- the workflow code cleans up and gives up: the run closes as cancelled
SELECT durable.task_fail(pg_temp.tok('wf-cancel'), '{"type": "cancelled", "message": "cancelled by request"}', false);
SELECT status, error FROM pg_temp.runs('wf-cancel');
SELECT pg_temp.errd($$SELECT durable.wf_result('wf-cancel')$$);
SELECT event_type, seq, details FROM durable.wf_history('wf-cancel')
 WHERE event_type IN ('cancel_requested', 'workflow_cancelled', 'sleep_cancelled', 'signal_cancelled');
-- a closed or unknown workflow cannot be cancelled
SELECT pg_temp.err($$SELECT durable.wf_cancel('wf-cancel')$$);
SELECT pg_temp.err($$SELECT durable.wf_cancel('wf-nope')$$);

--
-- wf_terminate: closes at once and withdraws every task
--
SELECT durable.wf_start('stuck', NULL, 'wf-term', 'wfq');
SELECT * FROM pg_temp.poll('wfq');
SELECT durable.task_suspend(pg_temp.tok('wf-term'),
    '[{"seq": 1, "type": "activity", "name": "a1", "queue": "wfq-act"},
      {"seq": 2, "type": "activity", "name": "a2", "queue": "wfq-act"}]');
SELECT * FROM pg_temp.poll('wfq-act');
-- a step resolves, so a workflow task is ready; then terminate
SELECT durable.task_complete(pg_temp.tok('wf-term', 1), '1');
SELECT t.seq, t.state FROM durable.tasks t JOIN durable.runs r USING (run_id)
 WHERE r.workflow_id = 'wf-term' ORDER BY t.seq;
SELECT * FROM pg_temp.poll('wfq');
SELECT durable.wf_terminate('wf-term', 'operator says stop');
SELECT status, error FROM pg_temp.runs('wf-term');
SELECT count(*) AS tasks_left FROM durable.tasks t JOIN durable.runs r USING (run_id) WHERE r.workflow_id = 'wf-term';
SELECT seq, name, status FROM durable.journal WHERE workflow_id = 'wf-term' ORDER BY seq;
-- the workers still holding tokens are told they are stale
SELECT pg_temp.err(format('SELECT durable.task_complete(%s, %L)', pg_temp.tok('wf-term'), '"done"'));
SELECT pg_temp.err(format('SELECT durable.task_heartbeat(%s)', pg_temp.tok('wf-term')));
SELECT pg_temp.err(format('SELECT durable.task_suspend(%s, %L)', pg_temp.tok('wf-term'), '[]'));
SELECT pg_temp.errd($$SELECT durable.wf_result('wf-term')$$);
SELECT pg_temp.err($$SELECT durable.wf_terminate('wf-term')$$);
SELECT pg_temp.err($$SELECT durable.wf_terminate('wf-nope')$$);
SELECT * FROM pg_temp.poll('wfq-act');

--
-- signals
--
SELECT durable.wf_start('approval', NULL, 'wf-sig', 'wfq');
-- signals sent before the workflow waits are buffered, in order
SELECT durable.wf_signal('wf-sig', 'approve', '{"n": 1}');
SELECT durable.wf_signal('wf-sig', 'approve', '{"n": 2}');
SELECT durable.wf_signal('wf-sig', 'other', '"x"');
SELECT * FROM pg_temp.poll('wfq');
-- the wait takes the oldest buffered one at once: the workflow task is
-- ready again right after the suspend
SELECT durable.task_suspend(pg_temp.tok('wf-sig'), '[{"seq": 1, "type": "signal", "name": "approve"}]');
SELECT * FROM pg_temp.poll('wfq');
SELECT durable.task_suspend(pg_temp.tok('wf-sig'), '[{"seq": 2, "type": "signal", "name": "approve"}]');
SELECT * FROM pg_temp.poll('wfq');
-- nothing buffered for seq 3: it waits
SELECT durable.task_suspend(pg_temp.tok('wf-sig'), '[{"seq": 3, "type": "signal", "name": "approve"}]');
SELECT * FROM pg_temp.poll('wfq');
-- a signal with a signal_id is taken once, however often it is sent
SELECT durable.wf_signal('wf-sig', 'approve', '{"n": 3}', 'sig-3');
SELECT durable.wf_signal('wf-sig', 'approve', '{"n": 3}', 'sig-3');
SELECT durable.wf_signal('wf-sig', 'approve', '{"n": 99}', 'sig-3');
SELECT name, payload, signal_id, consumed_seq FROM durable.signals g JOIN durable.runs r USING (run_id)
 WHERE r.workflow_id = 'wf-sig' ORDER BY signal_no;
SELECT * FROM pg_temp.poll('wfq');
-- a NULL payload arrives as JSON null
SELECT durable.task_suspend(pg_temp.tok('wf-sig'), '[{"seq": 4, "type": "signal", "name": "approve"}]');
SELECT durable.wf_signal('wf-sig', 'approve');
SELECT * FROM pg_temp.poll('wfq');
SELECT durable.task_complete(pg_temp.tok('wf-sig'), '"approved"');
-- every signal step resolved once, with one signal each
SELECT seq, status, result FROM durable.journal WHERE workflow_id = 'wf-sig' ORDER BY seq;
SELECT event_type, seq FROM durable.wf_history('wf-sig') WHERE seq IS NOT NULL;
-- closed and unknown workflows take no signals
SELECT pg_temp.err($$SELECT durable.wf_signal('wf-sig', 'approve', '1')$$);
SELECT pg_temp.err($$SELECT durable.wf_signal('wf-nope', 'approve', '1')$$);
-- the "other" signal was never taken; it stays recorded with the closed run
SELECT count(*) AS unconsumed FROM durable.signals g JOIN durable.runs r USING (run_id)
 WHERE r.workflow_id = 'wf-sig' AND consumed_seq IS NULL;

--
-- wf_signal_with_start: start if not running, then signal, in one call
--
SELECT durable.wf_signal_with_start('inbox', '{"owner": "ada"}', 'wf-sws', 'add', '{"item": 1}', 'wfq');
SELECT durable.wf_signal_with_start('inbox', '{"owner": "bob"}', 'wf-sws', 'add', '{"item": 2}', 'wfq');
SELECT status, input FROM durable.runs WHERE workflow_id = 'wf-sws';
SELECT name, payload FROM durable.signals g JOIN durable.runs r USING (run_id) WHERE r.workflow_id = 'wf-sws' ORDER BY signal_no;
SELECT kind, workflow_id, input FROM pg_temp.poll('wfq');
SELECT durable.task_suspend(pg_temp.tok('wf-sws'), '[{"seq": 1, "type": "signal", "name": "add"}, {"seq": 2, "type": "signal", "name": "add"}]');
SELECT seq, status, result FROM durable.journal WHERE workflow_id = 'wf-sws' ORDER BY seq;
SELECT kind, workflow_id FROM pg_temp.poll('wfq');
SELECT durable.task_complete(pg_temp.tok('wf-sws'), '"2 items"');
-- after the run closed, a new run starts with the signal
SELECT durable.wf_signal_with_start('inbox', '{"owner": "cy"}', 'wf-sws', 'add', '{"item": 3}', 'wfq');
SELECT status, input FROM durable.runs WHERE workflow_id = 'wf-sws' ORDER BY run_id;
SELECT pg_temp.err($$SELECT durable.wf_signal_with_start('inbox', NULL, 'wf-sws', 'add', NULL, 'wfq', '[]')$$);
SELECT durable.wf_terminate('wf-sws');

--
-- namespaces: ids are per namespace
--
SET durable.namespace = 'wf_other';
SELECT pg_temp.err($$SELECT durable.wf_start('greet', NULL, 'wf-ns', 'wfq')$$);
INSERT INTO durable.namespaces (namespace) VALUES ('wf_other');
SELECT durable.wf_start('greet', '"other ns"', 'wf-ns', 'wfq');
RESET durable.namespace;
SELECT durable.wf_start('greet', '"default ns"', 'wf-ns', 'wfq');
-- each namespace sees its own run; a poll serves its own namespace
SELECT durable.wf_status('wf-ns');
SELECT pg_temp.err($$SELECT durable.wf_status('wf-1')$$) LIKE 'DU005%' IS FALSE AS default_sees_wf_1;
SET durable.namespace = 'wf_other';
SELECT pg_temp.err($$SELECT durable.wf_status('wf-1')$$);
SELECT * FROM pg_temp.poll('wfq', 5);
SELECT durable.task_complete(pg_temp.tok('wf-ns'), '"done in other"');
SELECT durable.wf_status('wf-ns'), durable.wf_result('wf-ns');
RESET durable.namespace;
SELECT durable.wf_status('wf-ns');
SELECT namespace, status, input FROM durable.workflows WHERE workflow_id = 'wf-ns' ORDER BY namespace;
SELECT * FROM pg_temp.poll('wfq', 5);
SELECT durable.task_complete(pg_temp.tok('wf-ns'), '"done in default"');
SET durable.namespace = '';

--
-- invariants over everything this file did
--
SELECT count(*) AS open_runs FROM durable.runs WHERE workflow_id LIKE 'wf-%' AND status = 'running';
SELECT count(*) AS tasks_of_closed_runs FROM durable.tasks t JOIN durable.runs r USING (run_id) WHERE r.status <> 'running';
SELECT count(*) AS pending_steps_of_closed_runs FROM durable.steps s JOIN durable.runs r USING (run_id)
 WHERE r.status <> 'running' AND s.status = 'pending';
DELETE FROM durable.runs WHERE namespace = 'wf_other';
DELETE FROM durable.namespaces WHERE namespace = 'wf_other';
-- a namespace that is gone, or whose creation rolled back, takes no runs
-- (even in a session that used it before)
SET durable.namespace = 'wf_other';
SELECT pg_temp.err($$SELECT durable.wf_start('greet', NULL, 'wf-gone', 'wfq')$$);
SELECT pg_temp.err($$SELECT durable.wf_start('greet', NULL, NULL, 'wfq')$$);
SET durable.namespace = 'wf_ghost';
BEGIN;
INSERT INTO durable.namespaces (namespace) VALUES ('wf_ghost');
SELECT durable.wf_start('greet', NULL, 'wf-ghost-1', 'wfq');
ROLLBACK;
SELECT pg_temp.err($$SELECT durable.wf_start('greet', NULL, 'wf-ghost-2', 'wfq')$$);
SELECT pg_temp.err($$SELECT durable.wf_start('greet', NULL, NULL, 'wfq')$$);
RESET durable.namespace;
SELECT count(*) AS runs_without_namespace FROM durable.runs r
 WHERE NOT EXISTS (SELECT FROM durable.namespaces n WHERE n.namespace = r.namespace);
DELETE FROM durable.runs r WHERE NOT EXISTS (SELECT FROM durable.namespaces n WHERE n.namespace = r.namespace);
DELETE FROM durable.tasks t WHERE NOT EXISTS (SELECT FROM durable.runs r WHERE r.run_id = t.run_id);

-- a start without a workflow id: the id is generated (a UUIDv7), and the
-- run is number 1 of it, with its first workflow task ready
SELECT durable.wf_start('greet', '{"who": "gen"}', NULL, 'wf-gen') AS gen_id \gset
SELECT workflow_id ~ '^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' AS uuid_v7,
       run_number, status, input, request_id
  FROM durable.runs WHERE workflow_id = :'gen_id';
SELECT t.kind, t.state, t.new_run, t.seq FROM durable.tasks t JOIN durable.runs r USING (run_id)
 WHERE r.workflow_id = :'gen_id';
-- every call its own id, run and task, even in one statement
SELECT count(DISTINCT durable.wf_start('greet', NULL, NULL, 'wf-gen')) AS ids FROM generate_series(1, 5);
SELECT count(*) AS runs, count(DISTINCT t.run_id) AS tasks FROM durable.runs r
  JOIN durable.tasks t USING (run_id) WHERE r.queue = 'wf-gen';
-- options still apply to a generated id (start_delay, priority)
SELECT durable.wf_start('greet', NULL, NULL, 'wf-gen', '{"start_delay": "1 hour", "priority": 3}') AS gen_late \gset
SELECT t.priority, t.visible_at - t.created_at AS delay FROM durable.tasks t JOIN durable.runs r USING (run_id)
 WHERE r.workflow_id = :'gen_late';
-- the worker claims them like any start (the delayed one is not ready)
SELECT count(*) AS claimed, bool_or(workflow_id = :'gen_id') AS has_gen_id,
       bool_and(kind = 'workflow' AND journal = '[]' AND attempt = 1) AS fresh
  FROM durable.task_poll('wf-gen', 'w-gen', 10);
SELECT count(*) AS terminated FROM durable.runs r, durable.wf_terminate(r.workflow_id)
 WHERE r.queue = 'wf-gen' AND r.status = 'running';
