-- data_model: what the hot path's data model promises.  Closing a run
-- writes no index entry (a HOT update); a workflow id's runs are numbered
-- and at most one is open; lease expiry finds leased tasks; the retention purge walks runs in windows and reaches every
-- retained run, however many there are.  Ids start with "dm-", queues
-- with "dmq".
\i test/regress/common.sql

--
-- a one-step workflow in one transaction: the close is a HOT update
--
BEGIN;
SELECT durable.wf_start('dm', '{"n": 1}', 'dm-hot', 'dmq') AS hot_id \gset
SELECT durable.task_complete(token, '"done"') FROM durable.task_poll('dmq', 'w', 1);
SELECT n_tup_ins AS runs_inserted, n_tup_upd AS runs_updated, n_tup_hot_upd AS runs_hot_updated
  FROM pg_stat_xact_user_tables WHERE relid = 'durable.runs'::regclass;
COMMIT;
SELECT status, output, run_number FROM durable.workflows WHERE workflow_id = 'dm-hot';

-- (that no index of runs names a column the close changes is checked by
-- test/pgtap/schema.sql)

--
-- run numbers: one open run per workflow id, the next run numbered after
-- the latest
--
SELECT durable.wf_start('dm', NULL, 'dm-n', 'dmq') AS started;
SELECT pg_temp.err($$SELECT durable.wf_start('dm', NULL, 'dm-n', 'dmq')$$) AS second_start;
SELECT durable.wf_start('dm', NULL, 'dm-n', 'dmq', '{"id_conflict_policy": "use_existing"}') AS use_existing;
SELECT count(*) AS dm_n_runs FROM durable.runs WHERE workflow_id = 'dm-n';
SELECT durable.wf_start('dm', NULL, 'dm-n', 'dmq', '{"id_conflict_policy": "terminate_existing"}') AS replaced;
SELECT run_number, status FROM durable.workflows WHERE workflow_id = 'dm-n' ORDER BY run_number;
SELECT durable.task_complete(token, '"x"') FROM durable.task_poll('dmq', 'w', 1);
SELECT durable.wf_start('dm', NULL, 'dm-n', 'dmq') IS NOT NULL AS started_again;
SELECT run_number, status FROM durable.workflows WHERE workflow_id = 'dm-n' ORDER BY run_number;
-- wf_status and wf_describe read the latest run
SELECT durable.wf_status('dm-n') AS latest_status,
       (durable.wf_describe('dm-n')->>'run_id')::bigint =
       (SELECT max(run_id) FROM durable.runs WHERE workflow_id = 'dm-n') AS describe_latest;
-- continue-as-new numbers the next run
SELECT durable.task_complete(token, NULL, NULL, '{"again": true}')
  FROM durable.task_poll('dmq', 'w', 1);
SELECT run_number, status, input FROM durable.workflows WHERE workflow_id = 'dm-n' ORDER BY run_number;
SELECT durable.wf_terminate('dm-n');
-- two starts of one new id in one call (default reuse policy): the second
-- finds the first running, and the call starts none
SELECT pg_temp.err($$SELECT durable.wf_start_many('dm', ARRAY['1', '2']::jsonb[], ARRAY['dm-twice', 'dm-twice'], 'dmq')$$)
       AS repeated_id;
SELECT count(*) AS dm_twice_runs FROM durable.runs WHERE workflow_id = 'dm-twice';

--
-- lease expiry
--
SELECT durable.wf_start('dm', NULL, 'dm-lease', 'dmq-lease') IS NOT NULL AS started;
SELECT count(*) AS claimed FROM durable.task_poll('dmq-lease', 'w', 1, '1 min');
SELECT state, token IS NOT NULL AS has_token FROM durable.tasks t JOIN durable.runs r USING (run_id)
 WHERE r.workflow_id = 'dm-lease';
SET durable.clock_offset = '2min';
SELECT durable.tick() >= 1 AS expired;
SELECT state, token IS NULL AS token_cleared, t.attempt FROM durable.tasks t JOIN durable.runs r USING (run_id)
 WHERE r.workflow_id = 'dm-lease';
RESET durable.clock_offset;
SELECT durable.wf_terminate('dm-lease');

--
-- the purge walks durable.runs in windows of 20 x durable.batch_size
-- (10,000 here) and starts over after the last run: 10,500 closed runs
-- behind an open one, and runs of another namespace in between
--
INSERT INTO durable.namespaces (namespace, retention) VALUES ('dm_purge', '0');
SET durable.namespace = 'dm_purge';
SELECT durable.wf_start('dm', NULL, 'dm-open-first', 'dmq-open') IS NOT NULL AS started;
SELECT count(*) AS started FROM generate_series(1, 21) b,
       LATERAL durable.wf_start_many('dm', array_fill(jsonb_build_object('b', b), ARRAY[500]), NULL, 'dmq-p') s;
DO $$
BEGIN
    FOR i IN 1..11 LOOP
        PERFORM durable.task_complete_many(x.tokens, NULL)
           FROM (SELECT array_agg(token) AS tokens FROM durable.task_poll('dmq-p', 'w', 1000)) x
          WHERE x.tokens IS NOT NULL;
    END LOOP;
END $$;
SELECT status, count(*) FROM durable.runs WHERE namespace = 'dm_purge' GROUP BY status ORDER BY status;
RESET durable.namespace;
-- ticks until every closed run of the namespace is gone (at most 500 a
-- tick, and a pass over 10,500 runs examines two windows or more)
CREATE TEMP TABLE purge_ticks (n int);
DO $$
DECLARE n int := 0;
BEGIN
    WHILE n < 100 AND EXISTS (SELECT FROM durable.runs WHERE namespace = 'dm_purge' AND status <> 'running') LOOP
        PERFORM durable.tick();
        n := n + 1;
    END LOOP;
    INSERT INTO purge_ticks VALUES (n);
END $$;
SELECT n <= 25 AS purged_within_25_ticks FROM purge_ticks;
SELECT status, count(*) FROM durable.runs WHERE namespace = 'dm_purge' GROUP BY status;
-- the first run closes now: the purge reaches it though its pass went on
-- past it (after the last run it starts over)
SET durable.namespace = 'dm_purge';
SELECT durable.wf_terminate('dm-open-first');
RESET durable.namespace;
DO $$
BEGIN
    FOR i IN 1..3 LOOP
        PERFORM durable.tick();
    END LOOP;
END $$;
SELECT count(*) AS dm_purge_runs FROM durable.runs WHERE namespace = 'dm_purge';
-- other namespaces keep theirs
SELECT count(*) > 0 AS default_kept FROM durable.runs WHERE workflow_id LIKE 'dm-%' AND namespace = 'default';
DELETE FROM durable.namespaces WHERE namespace = 'dm_purge';
