-- batch: task_complete_many and task_poll(done_tokens) close many runs at
-- once when every token is a distinct workflow-task token; a batch with
-- activity tokens completes token by token, in order
\i test/regress/common.sql

SELECT durable.wf_start('b', jsonb_build_object('i', i), 'batch-' || i, 'batch_q')
  FROM generate_series(1, 5) i;
SELECT array_agg(token ORDER BY workflow_id) AS toks,
       array_agg(jsonb_build_object('out', workflow_id) ORDER BY workflow_id) AS outs
  FROM durable.task_poll('batch_q', 'w', 3) \gset
-- a repeated token: nothing changes, the second use is stale
SELECT pg_temp.err(format('SELECT durable.task_complete_many(%L::bigint[] || (%L::bigint[])[1:1], NULL)', :'toks', :'toks'));
SELECT count(*) FILTER (WHERE status = 'running') AS running FROM durable.workflows WHERE workflow_id LIKE 'batch-%';
-- all three at once
SELECT durable.task_complete_many(:'toks'::bigint[], :'outs'::jsonb[]);
SELECT workflow_id, status, output FROM durable.workflows WHERE workflow_id LIKE 'batch-%' ORDER BY workflow_id;
SELECT count(*) AS tasks_left FROM durable.tasks WHERE queue = 'batch_q';
-- the same tokens again: stale
SELECT pg_temp.err(format('SELECT durable.task_complete_many(%L::bigint[], NULL)', :'toks'));
SELECT event_type, count(*) FROM durable.history WHERE workflow_id LIKE 'batch-%' GROUP BY 1 ORDER BY 1;

-- finish-and-claim: done tokens complete, then the next tasks are claimed
SELECT array_agg(token) AS toks2 FROM durable.task_poll('batch_q', 'w', 2) \gset
SELECT count(*) AS claimed FROM durable.task_poll('batch_q', 'w', 2, '30 s', :'toks2'::bigint[], NULL);
SELECT count(*) FILTER (WHERE status = 'completed') AS completed FROM durable.workflows WHERE workflow_id LIKE 'batch-%';

-- a child's workflow token and an activity token in one batch: token by
-- token; the child's close resolves its parent's step
SELECT durable.wf_start('parent', NULL, 'batch-p', 'batch_q2');
SELECT durable.wf_start('plain', NULL, 'batch-a', 'batch_q2');
SELECT token AS ptok FROM durable.task_poll('batch_q2', 'w') \gset
SELECT durable.task_suspend(:ptok, '[{"seq": 1, "type": "child", "name": "kid", "workflow_id": "batch-kid", "queue": "batch_q3"}]');
SELECT token AS atok FROM durable.task_poll('batch_q2', 'w') \gset
SELECT durable.task_suspend(:atok, '[{"seq": 1, "type": "activity", "name": "act", "queue": "batch_q3"}]');
SELECT array_agg(token ORDER BY kind, workflow_id) AS toks3 FROM durable.task_poll('batch_q3', 'w', 2) \gset
SELECT durable.task_complete_many(:'toks3'::bigint[], NULL);
SELECT workflow_id, status FROM durable.workflows WHERE workflow_id IN ('batch-kid', 'batch-p', 'batch-a') ORDER BY 1;
SELECT workflow_id, seq, status FROM durable.journal WHERE workflow_id IN ('batch-p', 'batch-a') ORDER BY 1, 2;
-- both runs got their next workflow task
SELECT workflow_id FROM durable.task_list WHERE queue = 'batch_q2' ORDER BY 1;
SELECT durable.wf_terminate(w, 'test done') FROM unnest(ARRAY['batch-p', 'batch-a']) w;

-- a batch of workflow tokens whose runs are a parent's children: closed
-- together, and each parent step resolves with its child's output
SELECT durable.wf_start('parent2', NULL, 'batch-p2', 'batch_q4');
SELECT token AS p2tok FROM durable.task_poll('batch_q4', 'w') \gset
SELECT durable.task_suspend(:p2tok, '[{"seq": 1, "type": "child", "name": "k", "workflow_id": "batch-k1", "queue": "batch_q5"},
                                      {"seq": 2, "type": "child", "name": "k", "workflow_id": "batch-k2", "queue": "batch_q5"}]');
SELECT array_agg(token ORDER BY workflow_id) AS ktoks FROM durable.task_poll('batch_q5', 'w', 2) \gset
SELECT durable.task_complete_many(:'ktoks'::bigint[], ARRAY['"one"', '"two"']::jsonb[]);
SELECT workflow_id, seq, status, result FROM durable.journal WHERE workflow_id = 'batch-p2' ORDER BY seq;
SELECT count(*) AS parent_tasks FROM durable.task_list WHERE workflow_id = 'batch-p2';
SELECT durable.wf_terminate('batch-p2', 'test done');
