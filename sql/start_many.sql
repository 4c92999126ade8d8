-- start_many: wf_start_many starts one run per input in one call, all or
-- none, with wf_start's options and id policies; ids come back in input
-- order.  Ids start with "sm-", queues with "smq".
\i test/regress/common.sql
CREATE FUNCTION pg_temp.n() RETURNS text LANGUAGE sql AS $$
    SELECT format('runs %s, tasks %s', (SELECT count(*) FROM durable.runs),
                  (SELECT count(*) FROM durable.tasks)) $$;

-- given ids (one NULL: generated), inputs with a NULL, in input order
SELECT ordinality, CASE WHEN id LIKE 'sm-%' THEN id ELSE 'generated' END AS id
  FROM durable.wf_start_many('sm', ARRAY['{"i": 1}', NULL, '{"i": 3}']::jsonb[],
                             ARRAY['sm-1', 'sm-2', NULL], 'smq') WITH ORDINALITY AS t(id, ordinality);
SELECT w.workflow_id ~ '^(sm-[12]|[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})$' AS id_ok,
       w.workflow_type, w.queue, w.status, w.input, t.kind, t.state
  FROM durable.workflows w JOIN durable.tasks t USING (run_id)
 WHERE w.queue = 'smq' ORDER BY w.run_id;
-- each is an ordinary run: claim and complete them
SELECT count(*) AS completed FROM durable.task_poll('smq', 'w', 10) p,
       LATERAL durable.task_complete(p.token, p.input) c;
SELECT workflow_id, status, output FROM durable.workflows
 WHERE workflow_id IN ('sm-1', 'sm-2') ORDER BY 1;

-- generated ids, shared options (priority, start delay, memo, retry policy)
SET durable.clock_offset = 0;
SELECT count(*) AS started, count(DISTINCT id) AS distinct_ids
  FROM durable.wf_start_many('sm2', ARRAY(SELECT jsonb_build_object('i', i) FROM generate_series(1, 50) i),
                             NULL, 'smq2',
                             '{"priority": 5, "start_delay": "1 hour", "memo": {"k": "v"},
                               "retry_policy": {"maximum_attempts": 2}}') AS id;
SELECT count(*) AS runs, min(priority) AS prio, bool_and(options->'memo' = '{"k": "v"}') AS memo,
       bool_and(attempt = 1) AS first_attempt
  FROM durable.workflows WHERE queue = 'smq2';
SELECT count(*) AS tasks, bool_and(visible_at = created_at + interval '1 hour') AS delayed
  FROM durable.tasks WHERE queue = 'smq2';
SELECT count(*) AS claimable_now FROM durable.task_poll('smq2', 'w', 10);
-- an hour later they are due
SET durable.clock_offset = '61min';
SELECT count(*) AS claimable_later FROM durable.task_poll('smq2', 'w', 100, '1 min') p,
       LATERAL durable.task_complete(p.token, NULL) c;
RESET durable.clock_offset;

-- every id generated (NULL elements), under a reuse policy and a fairness
-- key: one insert of runs numbered 1 and their first tasks, in fair order
SELECT count(*) AS started, count(DISTINCT id) AS distinct_ids
  FROM durable.wf_start_many('sm4', ARRAY['1', '2', '3']::jsonb[], ARRAY[NULL, NULL, NULL]::text[],
                             'smq4', '{"id_reuse_policy": "reject_duplicate", "fairness_key": "t1"}') AS id;
SELECT count(*) AS runs, bool_and(run_number = 1) AS first_runs, bool_and(fairness_key = 't1') AS keyed
  FROM durable.runs WHERE queue = 'smq4';
SELECT count(*) AS tasks, bool_and(new_run) AS new_runs, bool_and(pass < 'Infinity') AS placed
  FROM durable.tasks WHERE queue = 'smq4';
SELECT count(*) AS completed FROM durable.task_poll('smq4', 'w', 10) p,
       LATERAL durable.task_complete(p.token, NULL) c;

-- an empty array starts nothing
SELECT count(*) AS none FROM durable.wf_start_many('sm', '{}'::jsonb[]);

-- id policies: a running id fails the whole call (nothing started) ...
SELECT durable.wf_start('sm', NULL, 'sm-run', 'smq3');
SELECT pg_temp.n() AS before \gset
SELECT pg_temp.err($$SELECT durable.wf_start_many('sm', ARRAY[NULL, NULL]::jsonb[], ARRAY['sm-new', 'sm-run'], 'smq3')$$);
SELECT pg_temp.n() = :'before' AS unchanged;
-- ... or, with use_existing, returns the running one beside the new
SELECT id FROM durable.wf_start_many('sm', ARRAY[NULL, NULL]::jsonb[], ARRAY['sm-new', 'sm-run'], 'smq3',
                                     '{"id_conflict_policy": "use_existing"}') AS id;
SELECT workflow_id, count(*) AS runs FROM durable.workflows
 WHERE workflow_id IN ('sm-new', 'sm-run') GROUP BY 1 ORDER BY 1;
-- an id twice in one call: the second is a conflict with the first
SELECT pg_temp.err($$SELECT durable.wf_start_many('sm', ARRAY[NULL, NULL]::jsonb[], ARRAY['sm-twice', 'sm-twice'], 'smq3')$$);
SELECT id FROM durable.wf_start_many('sm', ARRAY[NULL, NULL]::jsonb[], ARRAY['sm-twice', 'sm-twice'], 'smq3',
                                     '{"id_conflict_policy": "use_existing"}') AS id;
SELECT count(*) AS runs_of_twice FROM durable.workflows WHERE workflow_id = 'sm-twice';
-- id_reuse_policy applies to each id: a completed run forbids reuse
SELECT count(*) FROM durable.task_poll('smq3', 'w', 10) p, LATERAL durable.task_complete(p.token, NULL) c;
SELECT pg_temp.err($$SELECT durable.wf_start_many('sm', ARRAY[NULL]::jsonb[], ARRAY['sm-run'], 'smq3',
                                                  '{"id_reuse_policy": "reject_duplicate"}')$$);
SELECT id FROM durable.wf_start_many('sm', ARRAY[NULL]::jsonb[], ARRAY['sm-run'], 'smq3',
                                     '{"id_reuse_policy": "allow_duplicate"}') AS id;
SELECT count(*) AS runs_of_sm_run FROM durable.workflows WHERE workflow_id = 'sm-run';
SELECT count(*) FROM durable.task_poll('smq3', 'w', 10) p, LATERAL durable.task_complete(p.token, NULL) c;

-- bad input: a clear error, nothing started
SELECT pg_temp.n() AS before \gset
SELECT pg_temp.err($$SELECT durable.wf_start_many(NULL, ARRAY[NULL]::jsonb[])$$);
SELECT pg_temp.err($$SELECT durable.wf_start_many('sm', NULL)$$);
SELECT pg_temp.err($$SELECT durable.wf_start_many('sm', ARRAY[ARRAY['1'::jsonb]])$$);
SELECT pg_temp.err($$SELECT durable.wf_start_many('sm', ARRAY['1', '2']::jsonb[], ARRAY['sm-x'])$$);
SELECT pg_temp.err($$SELECT durable.wf_start_many('sm', ARRAY['1']::jsonb[], ARRAY[''])$$);
SELECT pg_temp.err($$SELECT durable.wf_start_many('sm', ARRAY['1']::jsonb[], NULL, NULL)$$);
SELECT pg_temp.err($$SELECT durable.wf_start_many('sm', ARRAY['1']::jsonb[], NULL, 'smq', '{"priority": "high"}')$$);
SELECT pg_temp.err($$SELECT durable.wf_start_many('sm', ARRAY['1']::jsonb[], NULL, 'smq', '{"request_id": "r1"}')$$);
SELECT pg_temp.err($$SELECT durable.wf_start_many('sm', ARRAY['1']::jsonb[], NULL, 'smq', '{"bogus": 1}')$$);
SELECT pg_temp.err($$SELECT durable.wf_start_many('sm', array_fill('1'::jsonb, ARRAY[100001]))$$);
-- a payload too large in the middle: none of the others starts
SET durable.max_payload_size = '1kB';
SELECT pg_temp.err($$SELECT durable.wf_start_many('sm', ARRAY['1', jsonb_build_object('b', repeat('x', 2000)), '3']::jsonb[], NULL, 'smq')$$);
RESET durable.max_payload_size;
-- an unknown namespace
SET durable.namespace = 'sm-nowhere';
SELECT pg_temp.err($$SELECT durable.wf_start_many('sm', ARRAY['1']::jsonb[], NULL, 'smq')$$);
RESET durable.namespace;
SELECT pg_temp.n() = :'before' AS unchanged;
