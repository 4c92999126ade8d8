-- retry: a workflow retry policy (wf_start option retry_policy, Temporal's
-- fields and defaults).  A run that fails or times out starts again as a
-- new run of the same workflow id and input after the backoff, until the
-- attempts run out or the error's type is non-retryable; wf_status follows
-- the latest run.  Time moves with durable.clock_offset.  Ids start with
-- "rt-", queues with "rtq".
\i test/regress/common.sql
\i test/regress/tasks.sql

CREATE FUNCTION pg_temp.runs(wid text)
RETURNS TABLE (status text, input jsonb, attempt text, error_type text)
LANGUAGE sql AS $$
    SELECT status, input, attempt::text, error->>'type' FROM durable.runs
     WHERE workflow_id = wid ORDER BY run_id $$;

SELECT durable.wf_start('flaky', '{"n": 1}', 'rt-1', 'rtq',
    '{"retry_policy": {"initial_interval": "10s", "backoff_coefficient": 2,
                       "maximum_attempts": 3, "non_retryable_error_types": ["Fatal"]}}');
SELECT workflow_id, attempt FROM pg_temp.poll('rtq');
-- attempt 1 fails: run 2 waits out the backoff (10 s)
SELECT durable.task_fail(pg_temp.tok('rt-1'), '{"type": "Oops", "message": "first"}', false);
SELECT * FROM pg_temp.runs('rt-1');
SELECT durable.wf_status('rt-1');
SELECT count(*) AS before_backoff FROM pg_temp.poll('rtq');
SET durable.clock_offset = '11s';
SELECT workflow_id, input FROM pg_temp.poll('rtq');
-- attempt 2 fails: run 3 after 20 s
SELECT durable.task_fail(pg_temp.tok('rt-1'), '{"type": "Oops", "message": "second"}', false);
SET durable.clock_offset = '25s';
SELECT count(*) AS before_backoff FROM pg_temp.poll('rtq');
SET durable.clock_offset = '32s';
SELECT workflow_id FROM pg_temp.poll('rtq');
-- attempt 3 fails too: no attempts left, the workflow failed
SELECT durable.task_fail(pg_temp.tok('rt-1'), '{"type": "Oops", "message": "third"}', false);
SELECT * FROM pg_temp.runs('rt-1');
SELECT pg_temp.err($$SELECT durable.wf_result('rt-1')$$);
SELECT event_type, details - 'new_run_id' AS details FROM durable.wf_history('rt-1')
 WHERE event_type = 'retry_scheduled';
RESET durable.clock_offset;

-- a non-retryable error type fails at once
SELECT durable.wf_start('flaky', NULL, 'rt-2', 'rtq',
    '{"retry_policy": {"non_retryable_error_types": ["Fatal"]}}');
SELECT workflow_id FROM pg_temp.poll('rtq');
SELECT durable.task_fail(pg_temp.tok('rt-2'), '{"type": "Fatal", "message": "no"}', false);
SELECT * FROM pg_temp.runs('rt-2');

-- a success on a later attempt completes the workflow
SELECT durable.wf_start('flaky', '"x"', 'rt-3', 'rtq', '{"retry_policy": {"initial_interval": "1s"}}');
SELECT workflow_id FROM pg_temp.poll('rtq');
SELECT durable.task_fail(pg_temp.tok('rt-3'), '{"type": "Oops"}', false);
SET durable.clock_offset = '2s';
SELECT workflow_id, input FROM pg_temp.poll('rtq');
SELECT durable.task_complete(pg_temp.tok('rt-3'), '"fine"');
SELECT * FROM pg_temp.runs('rt-3');
SELECT durable.wf_result('rt-3');

-- without a policy a failed run stays failed; cancel and terminate are
-- never retried
SELECT durable.wf_start('flaky', NULL, 'rt-4', 'rtq');
SELECT workflow_id FROM pg_temp.poll('rtq');
SELECT durable.task_fail(pg_temp.tok('rt-4'), '{"type": "Oops"}', false);
SELECT durable.wf_start('flaky', NULL, 'rt-5', 'rtq', '{"retry_policy": {}}');
SELECT durable.wf_terminate('rt-5', 'stop');
SELECT workflow_id, status FROM durable.workflows WHERE workflow_id IN ('rt-4', 'rt-5') ORDER BY 1;

-- a child with a retry policy: the parent's step waits for the last attempt
SELECT durable.wf_start('parent', NULL, 'rt-p', 'rtq');
SELECT workflow_id FROM pg_temp.poll('rtq');
SELECT durable.task_suspend(pg_temp.tok('rt-p'), '[{"seq": 1, "type": "child", "name": "flaky",
    "workflow_id": "rt-child", "options": {"retry_policy": {"initial_interval": "1s", "maximum_attempts": 2}}}]');
SELECT workflow_id FROM pg_temp.poll('rtq');
SELECT durable.task_fail(pg_temp.tok('rt-child'), '{"type": "Oops"}', false);
SELECT j.seq, j.status FROM durable.journal j JOIN durable.runs r USING (run_id)
 WHERE r.workflow_id = 'rt-p';
SET durable.clock_offset = '4s';
SELECT workflow_id FROM pg_temp.poll('rtq');
SELECT durable.task_fail(pg_temp.tok('rt-child'), '{"type": "Oops", "message": "again"}', false);
SELECT j.seq, j.status, j.error->>'type' AS error FROM durable.journal j JOIN durable.runs r USING (run_id)
 WHERE r.workflow_id = 'rt-p';
SELECT workflow_id, status, attempt FROM durable.runs
 WHERE workflow_id = 'rt-child' ORDER BY run_id;
RESET durable.clock_offset;

-- a run that times out (run_timeout) is retried too, by the background
-- work (durable.tick here)
SELECT durable.wf_start('flaky', NULL, 'rt-6', 'rtq',
    '{"run_timeout": "5s", "retry_policy": {"initial_interval": "1s", "maximum_attempts": 2}}');
SET durable.clock_offset = '6s';
SELECT durable.tick() >= 0 AS ticked;
SELECT * FROM pg_temp.runs('rt-6');
RESET durable.clock_offset;

-- no retry whose backoff would end after the execution deadline: the
-- run fails with its own error instead of timing out unstarted
SELECT durable.wf_start('flaky', NULL, 'rt-7', 'rtq2',
    '{"execution_timeout": "15s", "retry_policy": {"initial_interval": "10s"}}');
SELECT workflow_id FROM pg_temp.poll('rtq2');
SELECT durable.task_fail(pg_temp.tok('rt-7'), '{"type": "Oops", "message": "one"}', false);
SET durable.clock_offset = '11s';
SELECT workflow_id FROM pg_temp.poll('rtq2');
SELECT durable.task_fail(pg_temp.tok('rt-7'), '{"type": "Oops", "message": "two"}', false);
SELECT * FROM pg_temp.runs('rt-7');
RESET durable.clock_offset;

-- continue-as-new starts the attempts again; request_id follows the runs
SELECT durable.wf_start('flaky', NULL, 'rt-8', 'rtq2',
    '{"request_id": "req-8", "retry_policy": {"initial_interval": "1s", "maximum_attempts": 2}}');
SELECT workflow_id FROM pg_temp.poll('rtq2');
SELECT durable.task_fail(pg_temp.tok('rt-8'), '{"type": "Oops"}', false);
SELECT durable.wf_start('flaky', NULL, 'rt-8', 'rtq2', '{"request_id": "req-8"}') AS same_request;
SET durable.clock_offset = '2s';
SELECT workflow_id FROM pg_temp.poll('rtq2');
SELECT durable.task_complete(pg_temp.tok('rt-8'), NULL, NULL, '{"round": 2}');
SELECT * FROM pg_temp.runs('rt-8');
RESET durable.clock_offset;

-- a run asked to cancel is not retried, even when it times out
SELECT durable.wf_start('flaky', NULL, 'rt-9', 'rtq2',
    '{"run_timeout": "5s", "retry_policy": {"initial_interval": "1s"}}');
SELECT durable.wf_cancel('rt-9', 'never mind');
SET durable.clock_offset = '6s';
SELECT durable.tick() >= 0 AS ticked;
SELECT * FROM pg_temp.runs('rt-9');
RESET durable.clock_offset;

-- bad policies are refused and start nothing
SELECT pg_temp.err($$SELECT durable.wf_start('flaky', NULL, 'rt-bad', 'rtq', '{"retry_policy": 5}')$$);
SELECT pg_temp.err($$SELECT durable.wf_start('flaky', NULL, 'rt-bad', 'rtq', '{"retry_policy": {"maximum_attempts": -1}}')$$);
SELECT pg_temp.err($$SELECT durable.wf_start('flaky', NULL, 'rt-bad', 'rtq', '{"retry_policy": {"backoff_coefficient": 0.5}}')$$);
SELECT pg_temp.err($$SELECT durable.wf_start('flaky', NULL, 'rt-bad', 'rtq', '{"retry_policy": {"color": "red"}}')$$);
SELECT count(*) AS bad_runs FROM durable.runs WHERE workflow_id = 'rt-bad';

-- clean up
SELECT count(*) AS terminated FROM (
    SELECT durable.wf_terminate(workflow_id, 'test done') FROM durable.runs
     WHERE workflow_id LIKE 'rt-%' AND status = 'running') t;
