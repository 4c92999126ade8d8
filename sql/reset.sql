-- reset: wf_reset replaces a workflow's latest run by a new run that keeps
-- its steps before to_seq and redoes the rest (a running one is terminated
-- first); wf_fork starts a new workflow the same way and leaves the
-- source alone.  Signals the kept steps did not take go to the new run.
-- Ids start with "rs-", queues with "rsq".
\i test/regress/common.sql
\i test/regress/tasks.sql
CREATE FUNCTION pg_temp.steps(wid text)
RETURNS TABLE (run int, seq int, kind text, name text, status text, result jsonb)
LANGUAGE sql AS $$
    SELECT dense_rank() OVER (ORDER BY j.run_id)::int, j.seq, j.kind, j.name, j.status, j.result
      FROM durable.journal j WHERE j.workflow_id = wid ORDER BY j.run_id, j.seq $$;

-- a run with two local steps, a signal wait that took a signal, and an
-- activity that failed: reset it to redo from the activity (step 4)
SELECT durable.wf_start('order', '{"id": 7}', 'rs-1', 'rsq');
SELECT kind FROM pg_temp.poll('rsq');
SELECT durable.step_record(pg_temp.tok('rs-1'), 1, 'reserve', '"r-1"');
SELECT durable.step_record(pg_temp.tok('rs-1'), 2, 'price', '42');
SELECT durable.wf_signal('rs-1', 'approve', '{"by": "ada"}');
SELECT durable.wf_signal('rs-1', 'note', '"keep me"');
SELECT durable.task_suspend(pg_temp.tok('rs-1'),
    '[{"seq": 3, "type": "signal", "name": "approve"},
      {"seq": 4, "type": "activity", "name": "charge", "queue": "rsq", "retry": {"maximum_attempts": 1}}]');
SELECT kind, name FROM pg_temp.poll('rsq', 10) ORDER BY kind;
SELECT durable.task_fail(pg_temp.tok('rs-1', 4), '{"type": "CardDeclined"}', false);
SELECT * FROM pg_temp.steps('rs-1');

SELECT durable.wf_reset('rs-1', 4, 'card fixed') > 0 AS reset;
SELECT run_id = (SELECT max(run_id) FROM durable.runs) AS latest, status
  FROM durable.workflows WHERE workflow_id = 'rs-1' ORDER BY run_id;
-- the new run keeps steps 1-3 with their results; the old run is terminated
SELECT * FROM pg_temp.steps('rs-1');
SELECT error->>'message' AS old_error FROM durable.workflows
 WHERE workflow_id = 'rs-1' ORDER BY run_id LIMIT 1;
-- its first workflow task sees the kept journal and redoes the activity
SELECT kind, input, journal FROM pg_temp.poll('rsq', 10);
-- the "note" signal nobody took is buffered for the new run
SELECT name, payload, consumed_seq FROM durable.signals g
  JOIN durable.runs r USING (run_id)
 WHERE r.workflow_id = 'rs-1' AND r.status = 'running' ORDER BY signal_no;
SELECT event_type, details - 'new_run_id' - 'run_id' AS details FROM durable.wf_history('rs-1')
 WHERE event_type IN ('workflow_reset', 'reset_from', 'terminate_requested') ORDER BY event_time, event_type;

-- reset to step 1 starts over with the same input; a closed run can be
-- reset too
SELECT durable.task_complete(pg_temp.tok('rs-1'), '"done"');
SELECT durable.wf_reset('rs-1', 1) > 0 AS reset;
SELECT kind, input, journal FROM pg_temp.poll('rsq', 10);
SELECT count(*) AS runs, count(*) FILTER (WHERE status = 'running') AS running
  FROM durable.workflows WHERE workflow_id = 'rs-1';

-- fork: a new workflow with steps 1-2 of rs-1's latest run; rs-1 goes on
SELECT durable.step_record(pg_temp.tok('rs-1'), 1, 'reserve', '"r-2"');
SELECT durable.step_record(pg_temp.tok('rs-1'), 2, 'price', '43');
SELECT durable.wf_fork('rs-1', 3, 'rs-1-copy');
SELECT * FROM pg_temp.steps('rs-1-copy');
SELECT status, parent_run_id FROM durable.workflows WHERE workflow_id = 'rs-1-copy';
SELECT count(*) FILTER (WHERE status = 'running') AS rs1_running FROM durable.workflows
 WHERE workflow_id = 'rs-1';
SELECT event_type, details->>'workflow_id' AS other, details->>'to_seq' AS to_seq
  FROM durable.wf_history('rs-1') WHERE event_type = 'workflow_forked';
SELECT event_type, details->>'workflow_id' AS other FROM durable.wf_history('rs-1-copy')
 WHERE event_type = 'forked_from';
-- without a new id, one is generated
SELECT length(durable.wf_fork('rs-1', 1)) = 36 AS generated;

-- what cannot be reset or forked: a clear error and nothing changed
SELECT durable.wf_start('order', NULL, 'rs-2', 'rsq2');
SELECT kind FROM pg_temp.poll('rsq2');
SELECT durable.task_suspend(pg_temp.tok('rs-2'),
    '[{"seq": 1, "type": "sleep", "duration": "1h"},
      {"seq": 2, "type": "child", "name": "kid", "workflow_id": "rs-2-kid", "queue": "rsq2"}]');
SELECT pg_temp.state() AS before \gset
SELECT pg_temp.errd($$SELECT durable.wf_reset('rs-2', 2)$$);
SELECT pg_temp.errd($$SELECT durable.wf_reset('rs-2', 4)$$);
SELECT pg_temp.errd($$SELECT durable.wf_reset('rs-2-kid', 1)$$);
SELECT pg_temp.err($$SELECT durable.wf_reset('rs-nope', 1)$$);
SELECT pg_temp.err($$SELECT durable.wf_reset(NULL, 1)$$);
SELECT pg_temp.err($$SELECT durable.wf_reset('rs-2', NULL)$$);
SELECT pg_temp.err($$SELECT durable.wf_reset('rs-2', 0)$$);
SELECT pg_temp.err($$SELECT durable.wf_reset('rs-2', 1, repeat('r', 20000))$$);
SELECT pg_temp.errd($$SELECT durable.wf_fork('rs-2', 2)$$);
SELECT pg_temp.err($$SELECT durable.wf_fork('rs-1', 1, 'rs-1')$$);
SELECT pg_temp.err($$SELECT durable.wf_fork('rs-1', 1, '')$$);
SELECT pg_temp.state() = :'before' AS unchanged;
-- a child can be forked (the fork has no parent)
SELECT durable.wf_fork('rs-2-kid', 1, 'rs-2-kid-copy');
SELECT parent_run_id IS NULL AS no_parent FROM durable.workflows WHERE workflow_id = 'rs-2-kid-copy';

SELECT count(durable.wf_terminate(workflow_id)) FROM durable.workflows
 WHERE workflow_id LIKE 'rs-%' AND parent_run_id IS NULL AND status = 'running';
