-- tick: the periodic work durable.tick() does when the background worker
-- is off: fire due timers, time out signal waits, close runs past their
-- execution or run timeout, expire leases, purge closed runs past their
-- namespace's retention.  Time moves with durable.clock_offset (absolute
-- offsets from the real clock).  Ids start with "tick-", queues with
-- "tkq".

\i test/regress/common.sql
\i test/regress/tasks.sql
CREATE FUNCTION pg_temp.journal(wid text)
RETURNS TABLE (seq int, kind text, name text, status text, result jsonb, error jsonb)
LANGUAGE sql AS $$
    SELECT j.seq, j.kind, j.name, j.status, j.result, j.error FROM durable.journal j
     WHERE j.run_id = (SELECT max(run_id) FROM durable.runs WHERE workflow_id = wid) ORDER BY j.seq $$;
CREATE FUNCTION pg_temp.events(wid text)
RETURNS TABLE (event_type text, seq int, details jsonb)
LANGUAGE sql AS $$
    SELECT e.event_type, e.seq, e.details FROM durable.events e
     WHERE e.run_id = (SELECT max(run_id) FROM durable.runs WHERE workflow_id = wid) ORDER BY e.event_id $$;

-- close whatever earlier files left running, so that tick() counts only
-- what this file sets up
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT namespace, workflow_id FROM durable.runs WHERE status = 'running' LOOP
        PERFORM set_config('durable.namespace', r.namespace, true);
        PERFORM durable.wf_terminate(r.workflow_id, 'closed by tick.sql');
    END LOOP;
END $$;
SELECT count(*) AS open_runs FROM durable.runs WHERE status = 'running';
SELECT count(*) AS schedules FROM durable.schedules WHERE NOT paused;

-- nothing is due: tick does nothing
SELECT durable.tick();

--
-- timers
--
SELECT durable.wf_start('nap', NULL, 'tick-sleep', 'tkq');
SELECT kind, workflow_id FROM pg_temp.poll('tkq');
SELECT durable.task_suspend(pg_temp.tok('tick-sleep'),
    '[{"seq": 1, "type": "sleep", "duration": "30s"}, {"seq": 2, "type": "sleep", "duration": "1h"}]');
SET durable.clock_offset = '25s';
SELECT durable.tick();
SELECT seq, status FROM pg_temp.journal('tick-sleep');
SET durable.clock_offset = '31s';
SELECT durable.tick();
SELECT seq, status, result FROM pg_temp.journal('tick-sleep');
-- once fired, a timer does not fire again
SELECT durable.tick();
SELECT * FROM pg_temp.wtasks('tick-sleep');
SELECT kind, journal FROM pg_temp.poll('tkq');
SELECT durable.task_suspend(pg_temp.tok('tick-sleep'), '[]');
-- the second timer fires at the first tick after it is due
SET durable.clock_offset = '2h';
SELECT durable.tick();
SELECT * FROM pg_temp.wtasks('tick-sleep');
SELECT kind, journal FROM pg_temp.poll('tkq');
SELECT durable.task_complete(pg_temp.tok('tick-sleep'), '"woke up"');
RESET durable.clock_offset;

--
-- signal timeouts
--
SELECT durable.wf_start('approval', NULL, 'tick-sig', 'tkq');
SELECT kind, workflow_id FROM pg_temp.poll('tkq');
SELECT durable.task_suspend(pg_temp.tok('tick-sig'),
    '[{"seq": 1, "type": "signal", "name": "approve", "timeout": "1m"},
      {"seq": 2, "type": "signal", "name": "audit", "timeout": "1m"}]');
-- seq 2 gets its signal in time
SELECT durable.wf_signal('tick-sig', 'audit', '"ok"');
SET durable.clock_offset = '50s';
SELECT durable.tick();
SET durable.clock_offset = '61s';
SELECT durable.tick();
SELECT seq, name, status, result, error FROM pg_temp.journal('tick-sig');
SELECT * FROM pg_temp.events('tick-sig');
-- a signal after the timeout is not taken by the timed-out wait; the next
-- wait for it gets it
SELECT durable.wf_signal('tick-sig', 'approve', '"late"');
SELECT kind, journal FROM pg_temp.poll('tkq');
SELECT durable.task_suspend(pg_temp.tok('tick-sig'), '[{"seq": 3, "type": "signal", "name": "approve", "timeout": "1m"}]');
SELECT seq, status, result FROM pg_temp.journal('tick-sig');
SET durable.clock_offset = '5min';
SELECT durable.tick();
SELECT seq, status FROM pg_temp.journal('tick-sig');
SELECT kind, journal FROM pg_temp.poll('tkq');
SELECT durable.task_complete(pg_temp.tok('tick-sig'), '"approved late"');
RESET durable.clock_offset;

--
-- workflow timeouts
--
SELECT durable.wf_start('long', NULL, 'tick-exec', 'tkq', '{"execution_timeout": "10m"}');
SELECT durable.wf_start('long', NULL, 'tick-run', 'tkq', '{"execution_timeout": "1h", "run_timeout": "5m"}');
SELECT kind, workflow_id FROM pg_temp.poll('tkq', 2, '1 hour') ORDER BY workflow_id;
SELECT durable.task_suspend(pg_temp.tok('tick-exec'),
    '[{"seq": 1, "type": "activity", "name": "slow", "queue": "tkq-act"},
      {"seq": 2, "type": "sleep", "duration": "1d"}]');
SELECT seq FROM pg_temp.poll('tkq-act', 1, '1 hour');
-- tick-run's workflow task is still leased when its run times out
SET durable.clock_offset = '4min';
SELECT durable.tick();
SET durable.clock_offset = '6min';
SELECT durable.tick();
SELECT workflow_id, status, error FROM durable.runs WHERE workflow_id IN ('tick-exec', 'tick-run') ORDER BY workflow_id;
SELECT pg_temp.err(format($$SELECT durable.task_complete(%s, '"too late"')$$, pg_temp.tok('tick-run')));
SELECT pg_temp.err($$SELECT durable.wf_result('tick-run')$$);
SET durable.clock_offset = '11min';
SELECT durable.tick();
SELECT workflow_id, status, error FROM durable.runs WHERE workflow_id IN ('tick-exec', 'tick-run') ORDER BY workflow_id;
-- everything the run had outstanding is gone: its activity's token is stale
SELECT seq, kind, status FROM pg_temp.journal('tick-exec');
SELECT * FROM pg_temp.wtasks('tick-exec');
SELECT count(*) AS tasks_left FROM durable.tasks t JOIN durable.runs r USING (run_id) WHERE r.workflow_id = 'tick-exec';
SELECT pg_temp.err(format($$SELECT durable.task_complete(%s, '"done"')$$, pg_temp.tok('tick-exec', 1)));
-- one close event in the history
SELECT event_type, seq FROM durable.wf_history('tick-exec') WHERE event_type LIKE 'workflow_%';
-- later ticks leave the closed run alone; its sleep never fires
SET durable.clock_offset = '2d';
SELECT durable.tick();
RESET durable.clock_offset;

-- a run timeout applies to each run: continue-as-new starts a fresh one
SELECT durable.wf_start('loop', '{"i": 0}', 'tick-can', 'tkq', '{"run_timeout": "10min"}');
SET durable.clock_offset = '8min';
SELECT kind, workflow_id, input FROM pg_temp.poll('tkq');
SELECT durable.task_complete(pg_temp.tok('tick-can'), NULL, NULL, '{"i": 1}');
SET durable.clock_offset = '12min';
SELECT durable.tick();
SELECT status, input FROM durable.runs WHERE workflow_id = 'tick-can' ORDER BY run_id;
SET durable.clock_offset = '19min';
SELECT durable.tick();
SELECT status, input FROM durable.runs WHERE workflow_id = 'tick-can' ORDER BY run_id;
RESET durable.clock_offset;
-- while the execution timeout spans the whole chain
SELECT durable.wf_start('loop', '{"i": 0}', 'tick-can2', 'tkq', '{"execution_timeout": "15min"}');
SET durable.clock_offset = '8min';
SELECT kind, workflow_id, input FROM pg_temp.poll('tkq');
SELECT durable.task_complete(pg_temp.tok('tick-can2'), NULL, NULL, '{"i": 1}');
SET durable.clock_offset = '14min';
SELECT durable.tick();
SELECT status, input FROM durable.runs WHERE workflow_id = 'tick-can2' ORDER BY run_id;
SET durable.clock_offset = '16min';
SELECT durable.tick();
SELECT status, input FROM durable.runs WHERE workflow_id = 'tick-can2' ORDER BY run_id;
RESET durable.clock_offset;
SELECT durable.wf_terminate(workflow_id) FROM durable.runs
 WHERE workflow_id IN ('tick-can', 'tick-can2') AND status = 'running';

--
-- expired leases: tick hands a workflow task out again
--
SELECT durable.wf_start('w', NULL, 'tick-lease', 'tkq');
SELECT kind, attempt FROM pg_temp.poll('tkq', 1, '10 s');
SET durable.clock_offset = '11s';
SELECT durable.tick();
SELECT * FROM pg_temp.wtasks('tick-lease');
SELECT * FROM pg_temp.events('tick-lease');
SELECT kind, attempt FROM pg_temp.poll('tkq');
SELECT durable.task_complete(pg_temp.tok('tick-lease'), '"second try"');
RESET durable.clock_offset;

--
-- retention: closed runs leave after their namespace's retention
--
INSERT INTO durable.namespaces (namespace, retention) VALUES ('tick_ns', '7 days');
SET durable.namespace = 'tick_ns';
SELECT durable.wf_start('w', NULL, 'tick-old', 'tkq');
SELECT durable.wf_start('w', NULL, 'tick-open', 'tkq-open');
SELECT durable.wf_signal('tick-old', 'note', '1');
SELECT kind, workflow_id FROM pg_temp.poll('tkq');
SELECT durable.step_record(pg_temp.tok('tick-old'), 1, 'x', '1');
SELECT durable.task_fail(pg_temp.tok('tick-old'), '"transient"');
SET durable.clock_offset = '2s';
SELECT kind, workflow_id FROM pg_temp.poll('tkq');
SELECT durable.task_complete(pg_temp.tok('tick-old'), '"old"');
RESET durable.clock_offset;
SELECT (SELECT count(*) FROM durable.steps s WHERE s.run_id = r.run_id) AS steps,
       (SELECT count(*) FROM durable.events e WHERE e.run_id = r.run_id) AS events,
       (SELECT count(*) FROM durable.signals g WHERE g.run_id = r.run_id) AS signals
  FROM durable.runs r WHERE r.workflow_id = 'tick-old';
SELECT run_id AS old_run FROM durable.runs WHERE workflow_id = 'tick-old' \gset
SELECT count(*) AS default_runs FROM durable.runs WHERE namespace = 'default' \gset
-- kept while younger than the retention
UPDATE durable.namespaces SET retention = '1 hour' WHERE namespace = 'tick_ns';
SET durable.clock_offset = '59min';
SELECT durable.tick();
SELECT workflow_id, status FROM durable.runs WHERE namespace = 'tick_ns' ORDER BY workflow_id;
SET durable.clock_offset = '61min';
SELECT durable.tick();
SELECT workflow_id, status FROM durable.runs WHERE namespace = 'tick_ns' ORDER BY workflow_id;
SELECT (SELECT count(*) FROM durable.steps WHERE run_id = :old_run) AS steps,
       (SELECT count(*) FROM durable.events WHERE run_id = :old_run) AS events,
       (SELECT count(*) FROM durable.signals WHERE run_id = :old_run) AS signals;
SELECT pg_temp.err($$SELECT durable.wf_status('tick-old')$$);
-- the default namespace keeps its 7 days
SELECT count(*) = :default_runs AS default_runs_kept FROM durable.runs WHERE namespace = 'default';
-- retention 0: gone at the next tick after closing
UPDATE durable.namespaces SET retention = '0' WHERE namespace = 'tick_ns';
SELECT durable.wf_terminate('tick-open');
SELECT durable.tick();
SELECT count(*) AS tick_ns_runs FROM durable.runs WHERE namespace = 'tick_ns';
-- a new run of the same id starts afresh
SELECT durable.wf_start('w', NULL, 'tick-old', 'tkq', '{"id_reuse_policy": "reject_duplicate"}');
SELECT durable.wf_terminate('tick-old');
SELECT durable.tick();
RESET durable.namespace;
RESET durable.clock_offset;
DELETE FROM durable.namespaces WHERE namespace = 'tick_ns';

--
-- invariants
--
SELECT count(*) AS open_runs FROM durable.runs WHERE workflow_id LIKE 'tick-%' AND status = 'running';
SELECT count(*) AS tasks_of_closed_runs FROM durable.tasks t JOIN durable.runs r USING (run_id) WHERE r.status <> 'running';
SELECT count(*) AS pending_steps_of_closed_runs FROM durable.steps s JOIN durable.runs r USING (run_id)
 WHERE r.status <> 'running' AND s.status = 'pending';
SELECT durable.tick();
