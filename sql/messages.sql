-- messages: what workflow code sends beyond its own calls.  Commands
-- signal_external and cancel_external reach another workflow's running run
-- in the same transaction (their step resolves at once: completed, or
-- failed with workflow_not_found); a cancel command cancels one of the
-- run's own pending steps (a handle's cancel).  Ids start with "ms-",
-- queues with "msq".
\i test/regress/common.sql
\i test/regress/tasks.sql

-- ms-b waits for the signal "go"; ms-a signals it from workflow code
SELECT durable.wf_start('waiter', NULL, 'ms-b', 'msq');
SELECT kind, workflow_id FROM pg_temp.poll('msq');
SELECT durable.task_suspend(pg_temp.tok('ms-b'), '[{"seq": 1, "type": "signal", "name": "go"}]');
SELECT durable.wf_start('sender', NULL, 'ms-a', 'msq');
SELECT kind, workflow_id FROM pg_temp.poll('msq');
SELECT durable.task_suspend(pg_temp.tok('ms-a'),
    '[{"seq": 1, "type": "signal_external", "workflow_id": "ms-b", "signal": "go", "payload": {"x": 1}},
      {"seq": 2, "type": "signal_external", "workflow_id": "ms-nobody", "signal": "go"}]');
SELECT seq, kind, name, status, input, result, error FROM durable.journal
 WHERE workflow_id = 'ms-a' ORDER BY seq;
SELECT seq, kind, name, status, result FROM durable.journal WHERE workflow_id = 'ms-b';
-- both workflows run again: ms-b for its signal, ms-a for its results
SELECT workflow_id, journal FROM pg_temp.poll('msq', 10) ORDER BY workflow_id;
-- a replay sends the same commands again: nothing is signalled twice
SELECT durable.task_suspend(pg_temp.tok('ms-a'),
    '[{"seq": 1, "type": "signal_external", "workflow_id": "ms-b", "signal": "go", "payload": {"x": 1}},
      {"seq": 3, "type": "cancel_external", "workflow_id": "ms-b", "reason": "no longer needed"}]');
SELECT count(*) AS signals FROM durable.signals g JOIN durable.runs r USING (run_id)
 WHERE r.workflow_id = 'ms-b';
-- cancel_external: ms-b is asked to cancel, with the reason
SELECT cancel_requested FROM durable.workflows WHERE workflow_id = 'ms-b';
SELECT event_type, details FROM durable.wf_history('ms-b') WHERE event_type = 'cancel_requested';
SELECT seq, kind, name, status FROM durable.journal WHERE workflow_id = 'ms-a' AND seq = 3;

-- cancel: ms-c starts an activity, a timer, a signal wait and a child,
-- and when a short timer wakes it, cancels each one (the activity is
-- leased by a worker meanwhile)
SELECT durable.wf_start('canceller', NULL, 'ms-c', 'msq2');
SELECT kind FROM pg_temp.poll('msq2');
SELECT durable.task_suspend(pg_temp.tok('ms-c'),
    '[{"seq": 1, "type": "activity", "name": "charge", "queue": "msq2"},
      {"seq": 2, "type": "sleep", "duration": "1h"},
      {"seq": 3, "type": "signal", "name": "approve"},
      {"seq": 4, "type": "child", "name": "kid", "workflow_id": "ms-c-kid", "queue": "msq3"},
      {"seq": 5, "type": "sleep", "duration": "10s"}]');
SELECT kind, name FROM pg_temp.poll('msq2');
SET durable.clock_offset = '11s';
SELECT durable.tick() >= 1 AS fired;
SELECT kind, journal FROM pg_temp.poll('msq2');
SELECT durable.task_suspend(pg_temp.tok('ms-c'),
    '[{"seq": 1, "type": "cancel"}, {"seq": 2, "type": "cancel"},
      {"seq": 3, "type": "cancel"}, {"seq": 4, "type": "cancel"}]');
SELECT seq, kind, status, error->>'type' AS error FROM durable.journal
 WHERE workflow_id = 'ms-c' ORDER BY seq;
-- the activity's task is withdrawn: its worker's next call gets DU004
SELECT * FROM pg_temp.wtasks('ms-c');
SELECT pg_temp.err(format('SELECT durable.task_heartbeat(%s)', pg_temp.tok('ms-c', 1)));
-- the child is asked to cancel; its step resolves when it closes
SELECT cancel_requested FROM durable.workflows WHERE workflow_id = 'ms-c-kid';
SELECT kind, workflow_id, cancel_requested FROM pg_temp.poll('msq3');
SELECT durable.task_fail(pg_temp.tok('ms-c-kid'), '{"type": "cancelled", "message": "bye"}', false);
SELECT seq, status, error->>'type' AS error FROM durable.journal WHERE workflow_id = 'ms-c' AND seq = 4;
-- the run's next task: bad commands get a clear DU002 and change nothing
SELECT kind, journal FROM pg_temp.poll('msq2');
SELECT pg_temp.state() AS before \gset
SELECT pg_temp.err(format('SELECT durable.task_suspend(%s, %L)', pg_temp.tok('ms-c'), c))
  FROM unnest(ARRAY[
    '[{"seq": 9, "type": "cancel"}]',
    '[{"seq": 1, "type": "cancel", "reason": "x"}]',
    '[{"seq": 5, "type": "signal_external", "signal": "go"}]',
    '[{"seq": 5, "type": "signal_external", "workflow_id": "ms-b"}]',
    '[{"seq": 5, "type": "signal_external", "workflow_id": "ms-b", "signal": "go", "to": 1}]',
    '[{"seq": 5, "type": "cancel_external", "workflow_id": 7}]',
    '[{"seq": 5, "type": "cancel_external", "workflow_id": "ms-b", "payload": 1}]',
    '[{"seq": 5, "type": "teleport"}]']) c;
SET durable.max_payload_size = '1kB';
SELECT pg_temp.err(format('SELECT durable.task_suspend(%s, %L)', pg_temp.tok('ms-c'),
    jsonb_build_array(jsonb_build_object('seq', 5, 'type', 'signal_external',
        'workflow_id', 'ms-b', 'signal', 'go', 'payload', repeat('x', 2000)))));
RESET durable.max_payload_size;
-- another call at a journalled seq is nondeterminism (DU003)
SELECT pg_temp.err(format('SELECT durable.task_suspend(%s, %L)', pg_temp.tok('ms-c'),
    '[{"seq": 1, "type": "signal_external", "workflow_id": "ms-b", "signal": "go"}]'));
SELECT pg_temp.state() = :'before' AS unchanged;
-- cancelling a step that is no longer pending changes no step (a replay)
SELECT md5(string_agg(s::text, ',' ORDER BY seq)) AS steps_before
  FROM durable.steps s JOIN durable.runs r USING (run_id) WHERE r.workflow_id = 'ms-c' \gset
SELECT durable.task_suspend(pg_temp.tok('ms-c'), '[{"seq": 2, "type": "cancel"}, {"seq": 4, "type": "cancel"}]');
SELECT md5(string_agg(s::text, ',' ORDER BY seq)) = :'steps_before' AS steps_unchanged
  FROM durable.steps s JOIN durable.runs r USING (run_id) WHERE r.workflow_id = 'ms-c';
RESET durable.clock_offset;

-- a wait for any of several names: the first of them to come resolves
-- it with {"name", "payload"}; a signal of another name stays buffered
SELECT durable.wf_start('handlers', NULL, 'ms-d', 'msq4');
SELECT kind FROM pg_temp.poll('msq4');
SELECT durable.task_suspend(pg_temp.tok('ms-d'),
    '[{"seq": 1, "type": "signal", "names": ["approve", "reject"], "timeout": "1h"}]');
SELECT seq, name, status, input FROM durable.journal WHERE workflow_id = 'ms-d';
SELECT durable.wf_signal('ms-d', 'comment', '"hi"');
SELECT durable.wf_signal('ms-d', 'reject', '{"why": "budget"}');
SELECT seq, status, result FROM durable.journal WHERE workflow_id = 'ms-d';
SELECT name, consumed_seq FROM durable.signals g JOIN durable.runs r USING (run_id)
 WHERE r.workflow_id = 'ms-d' ORDER BY signal_no;
-- one buffered already: taken at once, oldest first
SELECT kind, journal FROM pg_temp.poll('msq4');
SELECT durable.task_suspend(pg_temp.tok('ms-d'),
    '[{"seq": 2, "type": "signal", "names": ["comment", "approve"]}]');
SELECT seq, status, result FROM durable.journal WHERE workflow_id = 'ms-d' AND seq = 2;
-- bad waits: a clear DU002 and nothing changed
SELECT kind FROM pg_temp.poll('msq4');
SELECT pg_temp.state() AS before \gset
SELECT pg_temp.err(format('SELECT durable.task_suspend(%s, %L)', pg_temp.tok('ms-d'), c))
  FROM unnest(ARRAY[
    '[{"seq": 3, "type": "signal"}]',
    '[{"seq": 3, "type": "signal", "name": "a", "names": ["b"]}]',
    '[{"seq": 3, "type": "signal", "names": []}]',
    '[{"seq": 3, "type": "signal", "names": "a"}]',
    '[{"seq": 3, "type": "signal", "names": ["a", 1]}]',
    '[{"seq": 3, "type": "signal", "names": ["a", ""]}]']) c;
SELECT pg_temp.err(format('SELECT durable.task_suspend(%s, %L)', pg_temp.tok('ms-d'),
    jsonb_build_array(jsonb_build_object('seq', 3, 'type', 'signal',
        'names', (SELECT jsonb_agg('s' || i) FROM generate_series(1, 101) i)))));
SELECT pg_temp.state() = :'before' AS unchanged;

-- a signal that reaches a wait after the workflow task read it pending,
-- which the task then cancels: the wait ends cancelled (as the code
-- believes) and the signal is buffered again for a later wait
SELECT durable.wf_start('waiter', NULL, 'ms-e', 'msq5');
SELECT kind FROM pg_temp.poll('msq5');
SELECT durable.task_suspend(pg_temp.tok('ms-e'),
    '[{"seq": 1, "type": "signal", "name": "go"}, {"seq": 2, "type": "sleep", "duration": "10s"}]');
SET durable.clock_offset = '1d';
SELECT durable.tick() >= 1 AS fired;
-- the task reads seq 1 pending; the signal comes while it runs
SELECT kind, journal FROM pg_temp.poll('msq5');
SELECT durable.wf_signal('ms-e', 'go', '{"n": 1}');
SELECT durable.task_suspend(pg_temp.tok('ms-e'),
    '[{"seq": 1, "type": "cancel"}, {"seq": 3, "type": "signal", "name": "go"}]');
SELECT seq, status, result FROM durable.journal WHERE workflow_id = 'ms-e' ORDER BY seq;

SELECT durable.wf_terminate(w) FROM unnest(ARRAY['ms-a', 'ms-b', 'ms-c', 'ms-d', 'ms-e']) w;
