-- batches: batch_start runs cancel, terminate, signal, pause, unpause or reset
-- over the running runs a visibility query matches, in steps
-- (batch_run, or the background worker's round: durable.tick), with the
-- progress in durable.batch_list.  Ids start with "bo-", queues with "boq".
\i test/regress/common.sql
\i test/regress/tasks.sql
CREATE FUNCTION pg_temp.paused() RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(workflow_id, ' ' ORDER BY workflow_id) FROM durable.workflows
     WHERE workflow_id LIKE 'bo-%' AND paused $$;
CREATE FUNCTION pg_temp.progress(id bigint) RETURNS TABLE (operation text, state text,
    applied bigint, skipped bigint, failed bigint)
LANGUAGE sql AS $$
    SELECT operation, state, applied, skipped, failed FROM durable.batch_list WHERE batch_id = id $$;

SELECT durable.wf_start('order', NULL, 'bo-' || i, 'boq',
           jsonb_build_object('search_attributes',
                              jsonb_build_object('Region', CASE WHEN i <= 4 THEN 'eu' ELSE 'us' END)))
  FROM generate_series(1, 6) i;

-- pause the four runs in eu, three at a time, in this transaction
SELECT durable.batch_start('pause', 'WorkflowId STARTS_WITH ''bo-'' AND Region = ''eu''',
                           'maintenance') AS b1 \gset
SELECT * FROM pg_temp.progress(:b1);
SELECT durable.batch_run(:b1, 3) AS went_through;
SELECT * FROM pg_temp.progress(:b1);
SELECT durable.batch_run(:b1, 3) AS went_through;
SELECT * FROM pg_temp.progress(:b1);
SELECT durable.batch_run(:b1, 3) AS went_through;
SELECT pg_temp.paused();
SELECT event_type, details FROM durable.wf_history('bo-1') WHERE event_type = 'workflow_paused';
-- the same batch again: nothing new to change
SELECT durable.batch_start('pause', 'WorkflowId STARTS_WITH ''bo-'' AND Region = ''eu''') AS b2 \gset
SELECT durable.batch_run(:b2, 100);
SELECT * FROM pg_temp.progress(:b2);

-- the background worker's round steps running batches: unpause all
SELECT durable.batch_start('unpause', 'WorkflowId STARTS_WITH ''bo-''') AS b3 \gset
SELECT durable.tick() >= 4 AS ticked;
SELECT * FROM pg_temp.progress(:b3);
SELECT pg_temp.paused();

-- signal every run, once: the batch's signal id keeps it once per run
SELECT durable.batch_start('signal', 'WorkflowId STARTS_WITH ''bo-''', NULL, 'ping',
                           '{"n": 1}') AS b4 \gset
SELECT durable.batch_run(:b4, 100);
SELECT count(*) AS signals, count(DISTINCT run_id) AS runs, min(name) AS name,
       bool_and(signal_id = 'batch/' || :b4) AS batch_signal_id
  FROM durable.signals WHERE run_id IN (SELECT run_id FROM durable.workflows WHERE workflow_id LIKE 'bo-%');

-- runs started after a batch began are not in it
SELECT durable.batch_start('cancel', 'WorkflowId STARTS_WITH ''bo-'' AND Region = ''us''',
                           'region closed') AS b5 \gset
SELECT durable.wf_start('order', NULL, 'bo-7', 'boq', '{"search_attributes": {"Region": "us"}}');
SELECT durable.batch_run(:b5, 100);
SELECT workflow_id, cancel_requested FROM durable.workflows
 WHERE workflow_id IN ('bo-5', 'bo-6', 'bo-7') ORDER BY workflow_id;
SELECT details FROM durable.wf_history('bo-5') WHERE event_type = 'cancel_requested';

-- terminate, stopped half-way
SELECT durable.batch_start('terminate', 'WorkflowId STARTS_WITH ''bo-''') AS b6 \gset
SELECT durable.batch_run(:b6, 2);
SELECT durable.batch_stop(:b6) AS stopped;
SELECT durable.batch_stop(:b6) AS stopped_again;
SELECT durable.batch_run(:b6, 100) AS after_stop;
SELECT * FROM pg_temp.progress(:b6);
SELECT count(*) FILTER (WHERE status = 'terminated') AS terminated,
       count(*) FILTER (WHERE status = 'running') AS running
  FROM durable.workflows WHERE workflow_id LIKE 'bo-%';

-- a run where the operation fails is counted, with its error, and the
-- batch goes on: a trigger (a fault injected for this test) refuses the
-- terminate_requested event of bo-5
CREATE FUNCTION pg_temp.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.event_type = 'terminate_requested' AND NEW.run_id =
       (SELECT run_id FROM durable.runs WHERE workflow_id = 'bo-5' AND status = 'running') THEN
        RAISE EXCEPTION 'refused for the test';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse BEFORE INSERT ON durable.events FOR EACH ROW EXECUTE FUNCTION pg_temp.refuse();
SELECT durable.batch_start('terminate', 'WorkflowId IN (''bo-4'', ''bo-5'', ''bo-6'')') AS bf \gset
SELECT durable.batch_run(:bf, 100);
DROP TRIGGER refuse ON durable.events;
SELECT state, applied, skipped, failed, last_error ~ '^run [0-9]+: refused for the test$' AS error_kept
  FROM durable.batch_list WHERE batch_id = :bf;
SELECT workflow_id, status FROM durable.workflows
 WHERE workflow_id IN ('bo-4', 'bo-5', 'bo-6') ORDER BY workflow_id;

-- a batch whose query no longer reads in the background worker's session
-- (a day-first date) is marked failed; the other batches go on
SET DateStyle = 'ISO, DMY';
SELECT durable.batch_start('cancel', 'WorkflowId STARTS_WITH ''bo-'' AND StartTime > ''13/01/2000''') AS b7 \gset
RESET DateStyle;
SELECT durable.batch_start('pause', 'WorkflowId = ''bo-7''') AS b8 \gset
SELECT durable.tick() >= 1 AS ticked;
SELECT state, last_error FROM durable.batch_list WHERE batch_id = :b7;
SELECT * FROM pg_temp.progress(:b8);

-- reset: each running run matched is replaced by a run that keeps the
-- steps before the payload's to_seq (wf_reset's rules); br-3, whose step
-- 1 is still pending, cannot be reset there and counts as failed
SELECT durable.wf_start('order', NULL, 'br-' || i, 'brq') FROM generate_series(1, 3) i;
SELECT count(*) AS claimed FROM pg_temp.poll('brq', 3);
SELECT durable.step_record(pg_temp.tok('br-' || i), 1, 'reserve', '"ok"'),
       durable.task_suspend(pg_temp.tok('br-' || i), '[{"seq": 2, "type": "sleep", "duration": "1h"}]')
  FROM generate_series(1, 2) i;
SELECT durable.task_suspend(pg_temp.tok('br-3'), '[{"seq": 1, "type": "activity", "name": "charge"}]');
SELECT durable.batch_start('reset', 'WorkflowId STARTS_WITH ''br-''', 'bad deploy',
                           NULL, '{"to_seq": 2}') AS br \gset
-- one run per step: the runs the first steps start (ids past the batch's
-- max_run_id) must not come up in the later steps
SELECT durable.batch_run(:br, 1) AS went_through;
SELECT durable.batch_run(:br, 1) AS went_through;
SELECT durable.batch_run(:br, 1) AS went_through;
SELECT durable.batch_run(:br, 1) AS went_through;
SELECT state, applied, skipped, failed,
       regexp_replace(last_error, '[0-9]+', 'N', 'g') AS last_error
  FROM durable.batch_list WHERE batch_id = :br;
SELECT workflow_id, count(*) AS runs, string_agg(status, ' ' ORDER BY run_id) AS statuses
  FROM durable.runs WHERE workflow_id LIKE 'br-%' GROUP BY 1 ORDER BY 1;
SELECT seq, kind, name, status, result FROM durable.journal
 WHERE workflow_id = 'br-1' AND run_id = (SELECT max(run_id) FROM durable.runs WHERE workflow_id = 'br-1');
SELECT event_type, details ->> 'reason' AS reason, details ->> 'to_seq' AS to_seq
  FROM durable.wf_history('br-1') WHERE event_type = 'reset_from';
SELECT count(durable.wf_terminate('br-' || i)) FROM generate_series(1, 3) i;

-- bad input: a clear error, and no batch made, no run changed
SELECT pg_temp.state() AS before, (SELECT count(*) FROM durable.batches) AS batches_before \gset
SELECT pg_temp.err($$SELECT durable.batch_start('explode', '')$$);
SELECT pg_temp.err($$SELECT durable.batch_start(NULL, '')$$);
SELECT pg_temp.err($$SELECT durable.batch_start('cancel', 'WorkflowId =')$$);
SELECT pg_temp.err($$SELECT durable.batch_start('cancel', 'WorkflowId = ''x'' ORDER BY RunId')$$);
SELECT pg_temp.err($$SELECT durable.batch_start('signal', '')$$);
SELECT pg_temp.err($$SELECT durable.batch_start('cancel', '', NULL, 'ping')$$);
SELECT pg_temp.err($$SELECT durable.batch_start('cancel', '', NULL, NULL, '1')$$);
SELECT pg_temp.err($$SELECT durable.batch_start('cancel', '', repeat('r', 20000))$$);
SELECT pg_temp.err($$SELECT durable.batch_start('reset', '', NULL, NULL, '{"to_seq": 0}')$$);
SELECT pg_temp.err($$SELECT durable.batch_start('reset', '', NULL, NULL, '{"seq": 2}')$$);
SELECT pg_temp.err($$SELECT durable.batch_start('reset', '', NULL, NULL, '"2"')$$);
SELECT pg_temp.err($$SELECT durable.batch_start('reset', '', NULL, 'ping')$$);
SELECT pg_temp.err($$SELECT durable.batch_run(NULL)$$);
SELECT pg_temp.err($$SELECT durable.batch_run(-5)$$);
SELECT pg_temp.err(format('SELECT durable.batch_run(%s, 0)', :b1));
SELECT pg_temp.err(format('SELECT durable.batch_run(%s, NULL)', :b1));
SELECT pg_temp.err($$SELECT durable.batch_stop(123456789)$$);
SELECT pg_temp.state() = :'before' AS unchanged,
       (SELECT count(*) FROM durable.batches) = :batches_before AS no_batch_made;

SELECT count(durable.wf_terminate(workflow_id)) FROM durable.workflows
 WHERE workflow_id LIKE 'bo-%' AND status = 'running';
