-- task: the worker protocol (task_poll, step_record, task_suspend,
-- task_complete, task_fail, task_heartbeat) and its invariants: at most
-- one workflow task per run, journal entries created and resolved once,
-- tokens valid only for their current lease.  Ids start with "task-",
-- queues with "tq".

\i test/regress/common.sql
\i test/regress/tasks.sql

--
-- task_poll: priority first (higher first), then ready time
--
SELECT durable.wf_start('p', '"a"', 'task-p-a', 'tq-prio');
SELECT durable.wf_start('p', '"b"', 'task-p-b', 'tq-prio', '{"priority": 5}');
SELECT durable.wf_start('p', '"c"', 'task-p-c', 'tq-prio');
SELECT durable.wf_start('p', '"d"', 'task-p-d', 'tq-prio', '{"priority": -3}');
SELECT durable.wf_start('p', '"e"', 'task-p-e', 'tq-prio', '{"priority": 1000}');
SELECT durable.wf_start('p', '"f"', 'task-p-f', 'tq-prio');
SELECT workflow_id, input FROM pg_temp.poll('tq-prio');
SELECT workflow_id, input FROM pg_temp.poll('tq-prio');
-- same priority: the older one first
SELECT workflow_id, input FROM pg_temp.poll('tq-prio');
-- max_tasks bounds a batch; the batch takes the next ones in order
SELECT workflow_id, input FROM pg_temp.poll('tq-prio', 2) ORDER BY workflow_id;
SELECT workflow_id, input FROM pg_temp.poll('tq-prio', 10);
SELECT workflow_id, input FROM pg_temp.poll('tq-prio', 10);
-- the lease: until now + lease, and the task is leased to the worker
SELECT durable.wf_start('p', NULL, 'task-lease', 'tq-lease');
BEGIN;
SELECT token AS lease_tok, lease_until FROM durable.task_poll('tq-lease', 'worker-7', 1, '42 s') \gset
SELECT :'lease_until'::timestamptz = now() + interval '42 s' AS lease_ok;
COMMIT;
SELECT state, worker, attempt, token = :lease_tok AS token_matches
  FROM durable.tasks WHERE queue = 'tq-lease';
SELECT durable.wf_terminate(workflow_id) FROM durable.runs WHERE workflow_id LIKE 'task-p-%' OR workflow_id = 'task-lease';
-- a queue with nothing ready returns no rows
SELECT count(*) FROM durable.task_poll('tq-empty', 'worker-1');

--
-- step_record and replay
--
SELECT durable.wf_start('replay', '{"x": 1}', 'task-r', 'tq');
SELECT * FROM pg_temp.poll('tq');
SELECT durable.step_record(pg_temp.tok('task-r'), 1, 'roll_dice', '4');
SELECT durable.step_record(pg_temp.tok('task-r'),
    '[{"seq": 2, "name": "uuid", "result": "b1c2"}, {"seq": 3, "name": "now", "result": {"t": 100}}]');
-- a missing result is recorded as JSON null
SELECT durable.step_record(pg_temp.tok('task-r'), '[{"seq": 4, "name": "noop"}]');
SELECT seq, kind, name, status, result FROM durable.journal WHERE workflow_id = 'task-r' ORDER BY seq;
-- recording the same seq and name again is a no-op: the first result wins
SELECT durable.step_record(pg_temp.tok('task-r'), 1, 'roll_dice', '6');
SELECT durable.step_record(pg_temp.tok('task-r'), '[{"seq": 2, "name": "uuid", "result": "zzzz"}]');
SELECT seq, result FROM durable.journal WHERE workflow_id = 'task-r' AND seq IN (1, 2) ORDER BY seq;
-- one call with a recorded seq (its first result stays), new seqs, and a
-- seq given twice with the same name (the first result wins)
SELECT durable.wf_start('replay', NULL, 'task-r2', 'tq-r2');
SELECT workflow_id FROM pg_temp.poll('tq-r2');
SELECT durable.step_record(pg_temp.tok('task-r2'), 1, 'a', '"first"');
SELECT durable.step_record(pg_temp.tok('task-r2'),
    '[{"seq": 1, "name": "a", "result": "again"}, {"seq": 2, "name": "b", "result": 2},
      {"seq": 3, "name": "c", "result": 3}, {"seq": 3, "name": "c", "result": 33}]');
SELECT seq, kind, name, status, result FROM durable.journal WHERE workflow_id = 'task-r2' ORDER BY seq;
SELECT durable.task_complete(pg_temp.tok('task-r2'), '"done"',
    '[{"seq": 3, "name": "c", "result": 333}, {"seq": 4, "name": "d"}]');
SELECT seq, name, result FROM durable.journal WHERE workflow_id = 'task-r2' ORDER BY seq;
SELECT status, output FROM durable.workflows WHERE workflow_id = 'task-r2';
-- another name, or another kind, at a recorded seq is nondeterminism
SELECT pg_temp.state() AS s0 \gset
SELECT pg_temp.err(format($$SELECT durable.step_record(%s, 1, 'flip_coin', '1')$$, pg_temp.tok('task-r')));
SELECT pg_temp.err(format($$SELECT durable.step_record(%s, '[{"seq": 5, "name": "ok", "result": 1}, {"seq": 3, "name": "later", "result": 1}]')$$, pg_temp.tok('task-r')));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "activity", "name": "roll_dice"}]')$$, pg_temp.tok('task-r')));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 6, "type": "sleep", "duration": 5}]', '[{"seq": 2, "name": "uuid2"}]')$$, pg_temp.tok('task-r')));
SELECT pg_temp.state() = :'s0' AS unchanged;
-- suspend: steps ride along, commands are applied, the task ends
SELECT durable.task_suspend(pg_temp.tok('task-r'),
    '[{"seq": 6, "type": "activity", "name": "work", "queue": "tq-act", "input": [1, 2]},
      {"seq": 7, "type": "sleep", "duration": "10 minutes"}]',
    '[{"seq": 5, "name": "pick", "result": "p"}]');
SELECT seq, kind, name, status, queue FROM durable.journal WHERE workflow_id = 'task-r' ORDER BY seq;
SELECT * FROM pg_temp.wtasks('task-r');
-- the token ended with the suspend
SELECT pg_temp.err(format($$SELECT durable.step_record(%s, 8, 'late', '1')$$, pg_temp.tok('task-r')));

--
-- at most one workflow task per run
--
SELECT * FROM pg_temp.poll('tq-act');
SELECT durable.task_complete(pg_temp.tok('task-r', 6), '"worked"');
-- the step resolved and no workflow task existed: one is ready now
SELECT * FROM pg_temp.wtasks('task-r');
SELECT * FROM pg_temp.poll('tq');
-- replaying the journal: commands for resolved or pending steps are
-- no-ops, new ones are applied
SELECT durable.task_suspend(pg_temp.tok('task-r'),
    '[{"seq": 6, "type": "activity", "name": "work", "queue": "tq-act", "input": [1, 2]},
      {"seq": 7, "type": "sleep", "duration": "10 minutes"},
      {"seq": 8, "type": "activity", "name": "a8", "queue": "tq-act"},
      {"seq": 9, "type": "activity", "name": "a9", "queue": "tq-act"}]');
SELECT * FROM pg_temp.wtasks('task-r');
SELECT count(*) AS activity_tasks_for_seq_6 FROM durable.tasks t JOIN durable.runs r USING (run_id)
 WHERE r.workflow_id = 'task-r' AND t.seq = 6;
SELECT seq, name, attempt FROM pg_temp.poll('tq-act', 5) ORDER BY seq;
SELECT durable.task_complete(pg_temp.tok('task-r', 8), '8');
SELECT * FROM pg_temp.poll('tq');
-- a step resolves while the workflow task is leased: no second task, the
-- leased one is marked to run again
SELECT durable.task_complete(pg_temp.tok('task-r', 9), '9');
SELECT * FROM pg_temp.wtasks('task-r');
SELECT * FROM pg_temp.poll('tq');
-- the worker, which saw only seq 8, waits for seq 9: its task ends and a
-- new one is ready at once, showing seq 9 resolved
SELECT durable.task_suspend(pg_temp.tok('task-r'), '[]');
SELECT * FROM pg_temp.wtasks('task-r');
SELECT * FROM pg_temp.poll('tq');
-- a ready workflow task stays the only one when more steps resolve
SELECT durable.task_suspend(pg_temp.tok('task-r'),
    '[{"seq": 10, "type": "activity", "name": "a10", "queue": "tq-act"},
      {"seq": 11, "type": "activity", "name": "a11", "queue": "tq-act"}]');
SELECT seq FROM pg_temp.poll('tq-act', 2) ORDER BY seq;
SELECT durable.task_complete(pg_temp.tok('task-r', 10), '10');
SELECT durable.task_complete(pg_temp.tok('task-r', 11), '11');
SELECT * FROM pg_temp.wtasks('task-r');
SELECT count(*) AS workflow_tasks FROM durable.tasks WHERE seq = 0 AND queue = 'tq';

--
-- task_complete: a workflow's result closes the run, with its last steps
--
SELECT * FROM pg_temp.poll('tq');
SELECT durable.task_complete(pg_temp.tok('task-r'), '{"total": 42}', '[{"seq": 12, "name": "sum", "result": 42}]');
SELECT status, output FROM durable.runs WHERE workflow_id = 'task-r';
SELECT seq, kind, status FROM durable.journal WHERE workflow_id = 'task-r' ORDER BY seq;
-- the timer of seq 7 never fired; it was cancelled with the close
SELECT count(*) AS tasks_left FROM durable.tasks t JOIN durable.runs r USING (run_id) WHERE r.workflow_id = 'task-r';

-- the array form completes several tasks in one call, results by position
SELECT durable.wf_start('fan', NULL, 'task-fan', 'tq');
SELECT * FROM pg_temp.poll('tq');
SELECT durable.task_suspend(pg_temp.tok('task-fan'),
    '[{"seq": 1, "type": "activity", "name": "f", "queue": "tq-act", "input": 1},
      {"seq": 2, "type": "activity", "name": "f", "queue": "tq-act", "input": 2},
      {"seq": 3, "type": "activity", "name": "f", "queue": "tq-act", "input": 3}]');
SELECT seq, input FROM pg_temp.poll('tq-act', 3) ORDER BY seq;
SELECT durable.task_complete_many(ARRAY[pg_temp.tok('task-fan', 2), pg_temp.tok('task-fan', 1)], ARRAY['"two"', '"one"']::jsonb[]);
-- NULL results: every task completes with JSON null
SELECT durable.task_complete_many(ARRAY[pg_temp.tok('task-fan', 3)], NULL);
SELECT seq, status, result FROM durable.journal WHERE workflow_id = 'task-fan' ORDER BY seq;
-- the workflow runs again and finishes; task_poll(done_tokens) completes
-- it and claims the next tasks in the same call
SELECT kind, workflow_id, journal FROM pg_temp.poll('tq');
SELECT durable.wf_start('fan', NULL, 'task-fan2', 'tq');
WITH p AS (SELECT * FROM durable.task_poll('tq', 'worker-1', 5, '30 s',
                         ARRAY[pg_temp.tok('task-fan')], ARRAY['"fanned"']::jsonb[]))
INSERT INTO seen (token, workflow_id, seq) SELECT token, workflow_id, seq FROM p
RETURNING workflow_id, seq;
SELECT status, output FROM durable.runs WHERE workflow_id = 'task-fan';
SELECT durable.task_suspend(pg_temp.tok('task-fan2'),
    '[{"seq": 1, "type": "activity", "name": "f", "queue": "tq-act"},
      {"seq": 2, "type": "activity", "name": "f", "queue": "tq-act"}]');
SELECT seq FROM pg_temp.poll('tq-act', 2) ORDER BY seq;
-- one stale token fails the whole call: nothing completes
SELECT pg_temp.state() AS s0 \gset
SELECT pg_temp.err(format('SELECT durable.task_complete_many(ARRAY[%s, %s], NULL)', pg_temp.tok('task-fan2', 1), pg_temp.tok('task-fan', 1)));
SELECT pg_temp.err(format($$SELECT * FROM durable.task_poll('tq-act', 'worker-1', 1, '30 s', ARRAY[%s, %s])$$, pg_temp.tok('task-fan2', 1), pg_temp.tok('task-fan', NULL)));
SELECT pg_temp.state() = :'s0' AS unchanged;
-- finishing an activity through task_poll wakes its workflow at once
INSERT INTO seen (token, workflow_id, seq)
SELECT token, workflow_id, seq
  FROM durable.task_poll('tq', 'worker-1', 5, '30 s', ARRAY[pg_temp.tok('task-fan2', 1)], ARRAY['"f1"']::jsonb[])
RETURNING workflow_id, seq;
SELECT durable.task_complete(pg_temp.tok('task-fan2', 2), '"f2"');
SELECT * FROM pg_temp.wtasks('task-fan2');
SELECT durable.task_complete(pg_temp.tok('task-fan2'), '"done"', '[{"seq": 3, "name": "tail"}]');
SELECT status, output FROM durable.runs WHERE workflow_id = 'task-fan2';

-- continue-as-new: the run closes and a fresh run of the same id starts
-- with a new input and an empty journal
SELECT durable.wf_start('loop', '{"i": 0}', 'task-can', 'tq');
SELECT kind, workflow_id, input, journal FROM pg_temp.poll('tq');
SELECT durable.task_complete(pg_temp.tok('task-can'), NULL, '[{"seq": 1, "name": "step", "result": 0}]', '{"i": 1}');
SELECT status, input, output FROM durable.runs WHERE workflow_id = 'task-can' ORDER BY run_id;
SELECT durable.wf_status('task-can'), durable.wf_result('task-can') IS NULL AS result_null;
SELECT kind, workflow_id, input, journal FROM pg_temp.poll('tq');
SELECT durable.task_complete(pg_temp.tok('task-can'), '"looped"');
SELECT durable.wf_result('task-can');

--
-- task_fail on workflow tasks
--
SELECT durable.wf_start('flaky', NULL, 'task-wff', 'tq');
SELECT * FROM pg_temp.poll('tq');
-- retryable (the default): the same task comes back after a backoff (1 s)
SELECT durable.task_fail(pg_temp.tok('task-wff'), '{"type": "IOError", "message": "db hiccup"}');
SELECT * FROM pg_temp.wtasks('task-wff');
SELECT t.visible_at - t.created_at AS backoff
  FROM durable.tasks t JOIN durable.runs r USING (run_id) WHERE r.workflow_id = 'task-wff';
SET durable.clock_offset = '2s';
SELECT * FROM pg_temp.poll('tq');
-- the second failure waits twice as long (2 s)
SELECT durable.task_fail(pg_temp.tok('task-wff'), '"again"');
SELECT t.visible_at - t.created_at AS backoff
  FROM durable.tasks t JOIN durable.runs r USING (run_id) WHERE r.workflow_id = 'task-wff';
SET durable.clock_offset = '5s';
SELECT * FROM pg_temp.poll('tq');
RESET durable.clock_offset;
SELECT event_type, details FROM durable.wf_history('task-wff') WHERE event_type = 'workflow_task_failed';
-- not retryable: the run fails with the error
SELECT durable.task_fail(pg_temp.tok('task-wff'), '{"type": "Bug", "message": "division by zero"}', false);
SELECT status, error FROM durable.runs WHERE workflow_id = 'task-wff';
SELECT * FROM pg_temp.wtasks('task-wff');
-- not retryable after a cancel request: the run is cancelled
SELECT durable.wf_start('flaky', NULL, 'task-wfc', 'tq');
SELECT * FROM pg_temp.poll('tq');
SELECT durable.wf_cancel('task-wfc');
SELECT durable.task_fail(pg_temp.tok('task-wfc'), '{"type": "CancelledError", "message": "stopped"}', false);
SELECT status, error FROM durable.runs WHERE workflow_id = 'task-wfc';

--
-- task_heartbeat
--
SELECT durable.wf_start('hb', NULL, 'task-hb', 'tq');
SELECT * FROM pg_temp.poll('tq');
SELECT durable.task_suspend(pg_temp.tok('task-hb'), '[{"seq": 1, "type": "activity", "name": "long", "queue": "tq-act"}]');
SELECT seq, attempt, heartbeat FROM pg_temp.poll('tq-act', 1, '10 s');
-- it extends the lease from now and keeps the details
BEGIN;
SELECT durable.task_heartbeat(pg_temp.tok('task-hb', 1), '{"done": 10}', '5 min') AS cancel_requested;
SELECT t.visible_at = now() + interval '5 min' AS lease_extended, t.heartbeat, t.heartbeat_at = now() AS beat_now
  FROM durable.tasks t WHERE t.token = pg_temp.tok('task-hb', 1);
COMMIT;
-- NULL details keep the last ones; the default lease is the one the task
-- was claimed with (10 s)
BEGIN;
SELECT durable.task_heartbeat(pg_temp.tok('task-hb', 1)) AS cancel_requested;
SELECT t.visible_at = now() + interval '10 s' AS lease_default, t.heartbeat
  FROM durable.tasks t WHERE t.token = pg_temp.tok('task-hb', 1);
COMMIT;
-- after a cancel request the activity's heartbeat reports it
SELECT durable.wf_cancel('task-hb', 'enough');
SELECT durable.task_heartbeat(pg_temp.tok('task-hb', 1), '{"done": 20}') AS cancel_requested;
-- a workflow task may heartbeat too (a long replay)
SELECT * FROM pg_temp.poll('tq');
SELECT durable.task_heartbeat(pg_temp.tok('task-hb')) AS workflow_task_cancel_requested;

--
-- stale tokens: a lease that ran out and was reclaimed
--
SELECT durable.wf_start('zombie', NULL, 'task-z', 'tq');
SELECT * FROM pg_temp.poll('tq', 1, '5 s');
SELECT pg_temp.tok('task-z') AS old_tok \gset
SET durable.clock_offset = '10s';
-- the next poll takes the expired task back and hands it out again
SELECT kind, workflow_id, attempt FROM pg_temp.poll('tq', 1, '1 min');
SELECT pg_temp.tok('task-z') <> :old_tok AS new_token;
SELECT event_type, details FROM durable.wf_history('task-z') WHERE event_type = 'workflow_task_timed_out';
-- the old worker is told its token is stale, whatever it calls
SELECT pg_temp.state() AS s0 \gset
SELECT pg_temp.err(format($$SELECT durable.step_record(%s, 1, 'x', '1')$$, :old_tok));
SELECT pg_temp.err(format($$SELECT durable.step_record(%s, '[{"seq": 1, "name": "x"}]')$$, :old_tok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "sleep", "duration": 1}]')$$, :old_tok));
SELECT pg_temp.err(format($$SELECT durable.task_complete(%s, '"zombie result"')$$, :old_tok));
SELECT pg_temp.err(format($$SELECT durable.task_complete_many(ARRAY[%s], NULL)$$, :old_tok));
SELECT pg_temp.err(format($$SELECT durable.task_fail(%s, '"zombie error"', false)$$, :old_tok));
SELECT pg_temp.err(format($$SELECT durable.task_heartbeat(%s)$$, :old_tok));
SELECT pg_temp.err(format($$SELECT * FROM durable.task_poll('tq', 'w', 1, '1 s', ARRAY[%s])$$, :old_tok));
SELECT pg_temp.err('SELECT durable.task_complete(-1)');
SELECT pg_temp.state() = :'s0' AS unchanged;
-- the current holder finishes normally
SELECT durable.task_complete(pg_temp.tok('task-z'), '"fresh result"');
RESET durable.clock_offset;
SELECT status, output FROM durable.runs WHERE workflow_id = 'task-z';

-- wrong task kind: activity tokens cannot record steps or suspend
SELECT pg_temp.err(format($$SELECT durable.step_record(%s, 1, 'x', '1')$$, pg_temp.tok('task-hb', 1)));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[]')$$, pg_temp.tok('task-hb', 1)));
SELECT pg_temp.err(format($$SELECT durable.task_complete(%s, '1', '[{"seq": 2, "name": "x"}]')$$, pg_temp.tok('task-hb', 1)));
SELECT durable.wf_terminate('task-hb');

--
-- invariants
--
SELECT count(*) AS open_runs FROM durable.runs WHERE workflow_id LIKE 'task-%' AND status = 'running';
SELECT count(*) AS tasks_of_closed_runs FROM durable.tasks t JOIN durable.runs r USING (run_id) WHERE r.status <> 'running';
SELECT count(*) AS pending_steps_of_closed_runs FROM durable.steps s JOIN durable.runs r USING (run_id)
 WHERE r.status <> 'running' AND s.status = 'pending';
