-- updates: wf_update sends, a workflow task lists the run's updates
-- (task_poll's updates column), the worker accepts one (command update,
-- journaled with its result or error) or rejects it (reject_update, no
-- journal entry), and wf_update_result reads the outcome.  Ids start
-- with "up-", queues with "upq".
\i test/regress/common.sql
-- everything: common.sql's state() and the updates table
CREATE FUNCTION pg_temp.all_state() RETURNS text LANGUAGE sql AS $$
    SELECT md5(pg_temp.state() || coalesce((SELECT string_agg(x::text, ',' ORDER BY run_id, update_id)
                                              FROM durable.updates x), '')) $$;
CREATE FUNCTION pg_temp.steps(wid text)
RETURNS TABLE (seq int, kind text, name text, status text, input jsonb, result jsonb, error jsonb)
LANGUAGE sql AS $$
    SELECT j.seq, j.kind, j.name, j.status, s.input, j.result, j.error
      FROM durable.journal j JOIN durable.steps s USING (run_id, seq)
     WHERE j.run_id = (SELECT max(run_id) FROM durable.runs WHERE workflow_id = wid)
     ORDER BY j.seq $$;

-- a run that waits (a signal step nobody sends)
SELECT durable.wf_start('counter', '{"total": 0}', 'up-1', 'upq');
SELECT token AS t, updates FROM durable.task_poll('upq', 'w') \gset
SELECT NOT :{?updates} AS no_updates_yet;
SELECT durable.task_suspend(:t, '[{"seq": 1, "type": "signal", "name": "stop"}]');

-- send: the update id comes back; the same id again sends nothing new
SELECT durable.wf_update('up-1', 'add', '{"n": 5}', 'u-1');
SELECT durable.wf_update('up-1', 'add', '{"n": 5}', 'u-1');
SELECT count(*) AS updates_of_up_1 FROM durable.updates WHERE update_id = 'u-1';
-- without an id: a new one each time (not kept: it is random)
SELECT length(durable.wf_update('up-1', 'noop')) = 36 AS generated_id;
DELETE FROM durable.updates WHERE name = 'noop';
-- not handled yet: NULL at once, and after a short wait
SELECT durable.wf_update_result('up-1', 'u-1', '0 s') IS NULL AS waiting;
SELECT durable.wf_update_result('up-1', 'u-1', '30 ms') IS NULL AS still_waiting;

-- the update woke the run: its workflow task lists it
SELECT token AS t, kind, updates FROM durable.task_poll('upq', 'w') \gset
SELECT :'kind' AS kind, :'updates'::jsonb AS updates;
-- accepted and handled: journaled at the next entry with its result
SELECT durable.task_suspend(:t, '[{"seq": 2, "type": "update", "update_id": "u-1", "result": {"total": 5}}]');
SELECT durable.wf_update_result('up-1', 'u-1', '0 s');
SELECT * FROM pg_temp.steps('up-1');

-- a rejected update leaves no journal entry; its caller learns why
SELECT durable.wf_update('up-1', 'add', '{"n": -1}', 'u-2');
SELECT token AS t, updates FROM durable.task_poll('upq', 'w') \gset
-- the accepted one stays listed (a replay needs its args), with its entry
SELECT :'updates'::jsonb AS updates;
SELECT durable.task_suspend(:t, '[{"type": "reject_update", "update_id": "u-2", "error": {"type": "invalid", "message": "n must be positive"}}]');
SELECT pg_temp.errd($$ SELECT durable.wf_update_result('up-1', 'u-2', '0 s') $$);
SELECT max(seq) AS last_seq FROM pg_temp.steps('up-1');

-- a handler that raised: the update failed, journaled with the error
SELECT durable.wf_update('up-1', 'divide', '{"by": 0}', 'u-3');
SELECT token AS t FROM durable.task_poll('upq', 'w') \gset
SELECT durable.task_suspend(:t, '[{"seq": 3, "type": "update", "update_id": "u-3", "error": {"type": "ZeroDivisionError", "message": "division by zero"}}]');
SELECT pg_temp.errd($$ SELECT durable.wf_update_result('up-1', 'u-3', '0 s') $$);
SELECT seq, kind, name, status, error FROM pg_temp.steps('up-1') WHERE seq = 3;

-- a handler that returned nothing: the result is JSON null, not "not yet"
SELECT durable.wf_update('up-1', 'touch', NULL, 'u-3n');
SELECT token AS t FROM durable.task_poll('upq', 'w') \gset
SELECT durable.task_updates(:t, '[{"seq": 4, "type": "update", "update_id": "u-3n"}]');
SELECT durable.task_suspend(:t, '[]');
SELECT durable.wf_update_result('up-1', 'u-3n', '0 s') IS NULL AS sql_null,
       durable.wf_update_result('up-1', 'u-3n', '0 s') = 'null' AS json_null;

-- the history names the accepted updates
SELECT event_type, seq, details->>'name' AS name FROM durable.history
 WHERE workflow_id = 'up-1' AND event_type LIKE 'update%' ORDER BY seq, event_type;

-- accepted in the middle of a task (task_updates): the task goes on, its
-- caller has the result at this commit; waiting_on is kept for replays
SELECT durable.wf_update('up-1', 'add', '{"n": 1}', 'u-3b');
SELECT token AS t FROM durable.task_poll('upq', 'w') \gset
SELECT durable.task_updates(:t, '[{"seq": 5, "type": "update", "update_id": "u-3b", "waiting_on": 1, "result": {"total": 6}}]');
SELECT durable.wf_update_result('up-1', 'u-3b', '0 s');
SELECT pg_temp.err(format($$ SELECT durable.task_updates(%s, '[{"seq": 6, "type": "sleep", "duration": "1s"}]') $$, :t));
SELECT pg_temp.err(format($$ SELECT durable.task_updates(%s, NULL) $$, :t));
SELECT pg_temp.err(format($$ SELECT durable.task_updates(%s, '[{"seq": 6, "type": "update", "update_id": "u-3b", "waiting_on": 0, "result": 1}]') $$, :t));
SELECT durable.task_suspend(:t, '[]');
SELECT pg_temp.err(format($$ SELECT durable.task_updates(%s, '[]') $$, :t));
SELECT update_id, state, seq, waiting_on FROM durable.updates WHERE update_id = 'u-3b';

-- bad commands: a clear DU002, and nothing changes
SELECT durable.wf_update('up-1', 'add', '{"n": 1}', 'u-4');
SELECT token AS t FROM durable.task_poll('upq', 'w') \gset
SELECT pg_temp.all_state() AS before \gset
SELECT pg_temp.err(format($$ SELECT durable.task_suspend(%s, '[{"seq": 6, "type": "update", "update_id": "u-nope", "result": 1}]') $$, :t));
SELECT pg_temp.err(format($$ SELECT durable.task_suspend(%s, '[{"seq": 6, "type": "update", "update_id": "u-1", "result": 1}]') $$, :t));
SELECT pg_temp.err(format($$ SELECT durable.task_suspend(%s, '[{"seq": 6, "type": "update", "update_id": "u-2", "result": 1}]') $$, :t));
SELECT pg_temp.err(format($$ SELECT durable.task_suspend(%s, '[{"seq": 3, "type": "update", "update_id": "u-4", "result": 1}]') $$, :t));
SELECT pg_temp.err(format($$ SELECT durable.task_suspend(%s, '[{"seq": 6, "type": "update", "update_id": "u-4", "result": 1, "error": {"message": "x"}}]') $$, :t));
SELECT pg_temp.err(format($$ SELECT durable.task_suspend(%s, '[{"seq": 6, "type": "update", "result": 1}]') $$, :t));
SELECT pg_temp.err(format($$ SELECT durable.task_suspend(%s, '[{"seq": 6, "type": "update", "update_id": "u-4", "error": "oops"}]') $$, :t));
SELECT pg_temp.err(format($$ SELECT durable.task_suspend(%s, '[{"seq": 6, "type": "update", "update_id": "u-4", "bogus": 1}]') $$, :t));
SELECT pg_temp.err(format($$ SELECT durable.task_suspend(%s, '[{"type": "reject_update", "update_id": "u-4"}]') $$, :t));
SELECT pg_temp.err(format($$ SELECT durable.task_suspend(%s, '[{"type": "reject_update", "update_id": "u-1", "error": {"message": "late"}}]') $$, :t));
SELECT pg_temp.err(format($$ SELECT durable.task_suspend(%s, '[{"type": "reject_update", "update_id": "u-4", "seq": 6, "error": {"message": "x"}}]') $$, :t));
SELECT pg_temp.all_state() = :'before' AS unchanged;
-- accepted twice in one call: the second is refused, the call undone
SELECT pg_temp.err(format($$ SELECT durable.task_suspend(%s, '[{"seq": 6, "type": "update", "update_id": "u-4", "result": 1}, {"seq": 7, "type": "update", "update_id": "u-4", "result": 1}]') $$, :t));
SELECT pg_temp.all_state() = :'before' AS unchanged;
-- the same command again at the same entry is a replay: nothing new
SELECT durable.task_suspend(:t, '[{"seq": 6, "type": "update", "update_id": "u-4", "result": {"total": 6}}, {"seq": 6, "type": "update", "update_id": "u-4", "result": {"total": 6}}]');
SELECT durable.wf_update_result('up-1', 'u-4');

-- bad calls: a clear error, nothing changed
SELECT pg_temp.all_state() AS before \gset
SELECT pg_temp.err($$ SELECT durable.wf_update(NULL, 'add') $$);
SELECT pg_temp.err($$ SELECT durable.wf_update('up-1', NULL) $$);
SELECT pg_temp.err($$ SELECT durable.wf_update('up-1', '') $$);
SELECT pg_temp.err($$ SELECT durable.wf_update('up-1', 'add', NULL, '') $$);
SELECT pg_temp.err($$ SELECT durable.wf_update('up-1', 'add', NULL, repeat('u', 300)) $$);
SELECT pg_temp.err($$ SELECT durable.wf_update('up-nobody', 'add') $$);
SELECT pg_temp.err($$ SELECT durable.wf_update('up-1', 'add', to_jsonb(repeat('x', 3000000))) $$);
SELECT pg_temp.err($$ SELECT durable.wf_update_result(NULL, 'u-1') $$);
SELECT pg_temp.err($$ SELECT durable.wf_update_result('up-1', NULL) $$);
SELECT pg_temp.err($$ SELECT durable.wf_update_result('up-1', 'u-nope') $$);
SELECT pg_temp.err($$ SELECT durable.wf_update_result('up-nobody', 'u-1') $$);
SELECT pg_temp.err($$ SELECT durable.wf_update_result('up-1', 'u-1', '-1 s') $$);
SELECT pg_temp.all_state() = :'before' AS unchanged;

-- a reset keeps the updates its kept steps accepted (a replay needs
-- their args), and not those of the steps it redoes
SELECT durable.wf_start('counter', NULL, 'up-5', 'upq2');
SELECT token AS t FROM durable.task_poll('upq2', 'w') \gset
SELECT durable.task_suspend(:t, '[{"seq": 1, "type": "signal", "name": "go"}]');
SELECT durable.wf_signal('up-5', 'go');
SELECT durable.wf_update('up-5', 'add', '{"n": 1}', 'u-r1');
SELECT token AS t FROM durable.task_poll('upq2', 'w') \gset
SELECT durable.task_suspend(:t, '[{"seq": 2, "type": "update", "update_id": "u-r1", "result": 1},
                                   {"seq": 3, "type": "signal", "name": "go2"}]');
SELECT durable.wf_signal('up-5', 'go2');
SELECT durable.wf_update('up-5', 'add', '{"n": 2}', 'u-r2');
SELECT token AS t FROM durable.task_poll('upq2', 'w') \gset
SELECT durable.task_suspend(:t, '[{"seq": 4, "type": "update", "update_id": "u-r2", "result": 2},
                                   {"seq": 5, "type": "signal", "name": "stop"}]');
SELECT durable.wf_reset('up-5', 4, 'redo from 4') IS NOT NULL AS reset;
SELECT token AS t, updates FROM durable.task_poll('upq2', 'w') \gset
SELECT jsonb_path_query_array(:'updates'::jsonb, '$[*].update_id') AS kept_updates;
SELECT durable.wf_terminate('up-5', 'done');

-- a run that closes before handling an update: its caller is told so,
-- and a closed run takes no more updates
SELECT durable.wf_update('up-1', 'add', '{"n": 2}', 'u-5');
SELECT durable.wf_terminate('up-1', 'done here');
SELECT pg_temp.errd($$ SELECT durable.wf_update_result('up-1', 'u-5', '0 s') $$);
SELECT pg_temp.err($$ SELECT durable.wf_update('up-1', 'add', '{"n": 3}', 'u-6') $$);

-- update-with-start: the start and the update commit together; the new
-- run's first workflow task lists the update
BEGIN;
SELECT durable.wf_start('counter', '{"total": 0}', 'up-2', 'upq', '{"id_conflict_policy": "use_existing"}');
SELECT durable.wf_update('up-2', 'add', '{"n": 7}', 'u-7');
COMMIT;
SELECT token AS t, updates FROM durable.task_poll('upq', 'w') \gset
SELECT :'updates'::jsonb AS updates;
SELECT durable.task_complete(:t, '{"total": 7}', '[]');
SELECT pg_temp.errd($$ SELECT durable.wf_update_result('up-2', 'u-7', '0 s') $$);
-- an activity task carries no updates
SELECT durable.wf_start('counter', NULL, 'up-3', 'upq');
SELECT token AS t FROM durable.task_poll('upq', 'w') \gset
SELECT durable.task_suspend(:t, '[{"seq": 1, "type": "activity", "name": "work"}]');
SELECT durable.wf_update('up-3', 'add', NULL, 'u-8');
CREATE TEMP TABLE up3 AS SELECT kind, token, updates FROM durable.task_poll('upq', 'w', 5);
SELECT kind, updates IS NULL AS no_updates FROM up3 ORDER BY kind;
-- an activity's token cannot handle updates
SELECT pg_temp.err(format($$ SELECT durable.task_updates(%s, '[]') $$, (SELECT token FROM up3 WHERE kind = 'activity')));

-- purged with its run (a namespace whose retention is 0)
INSERT INTO durable.namespaces (namespace, retention) VALUES ('up_ns', '0');
SET durable.namespace = 'up_ns';
SELECT durable.wf_start('counter', NULL, 'up-4', 'upq');
SELECT durable.wf_update('up-4', 'add', NULL, 'u-9');
SELECT durable.wf_terminate('up-4', 'cleanup');
SELECT count(*) AS updates_before FROM durable.updates WHERE update_id = 'u-9';
SELECT durable.tick();
SELECT count(*) AS updates_after FROM durable.updates WHERE update_id = 'u-9';
RESET durable.namespace;
DELETE FROM durable.namespaces WHERE namespace = 'up_ns';
