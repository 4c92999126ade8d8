-- query: live queries (wf_query, task_answer_query) as far as one session
-- can drive them.  The answer needs a worker in another process while the
-- caller waits: test/e2e/test_sdk.py test_queries covers that path.  Ids
-- start with "qy-", queues with "qyq".
\i test/regress/common.sql

SELECT durable.wf_start('tally', '{"n": 1}', 'qy-1', 'qyq');
SELECT pg_temp.state() AS before \gset
-- no worker polls qyq: the caller gives up after its timeout (DU016), and
-- a poll afterwards gets the task, not the abandoned query
SELECT pg_temp.err($$ SELECT durable.wf_query('qy-1', 'items', NULL, '50 ms') $$);
SELECT pg_temp.state() = :'before' AS unchanged;
SELECT kind, workflow_id, name FROM durable.task_poll('qyq', 'w', 5);
-- answering a query no one waits for any more: false, nothing happens
SELECT durable.task_answer_query(-65536, '{"n": 1}');

-- bad input: a clear error, nothing changed
SELECT pg_temp.state() AS before \gset
SELECT pg_temp.err($$ SELECT durable.wf_query(NULL, 'items') $$);
SELECT pg_temp.err($$ SELECT durable.wf_query('qy-1', NULL) $$);
SELECT pg_temp.err($$ SELECT durable.wf_query('qy-1', '') $$);
SELECT pg_temp.err($$ SELECT durable.wf_query('qy-nobody', 'items') $$);
SELECT pg_temp.err($$ SELECT durable.wf_query('qy-1', 'items', NULL, '0 s') $$);
SELECT pg_temp.err($$ SELECT durable.wf_query('qy-1', 'items', NULL, '-1 s') $$);
SELECT pg_temp.err($$ SELECT durable.wf_query('qy-1', 'items', NULL, NULL) $$);
SELECT pg_temp.err($$ SELECT durable.wf_query('qy-1', 'items', to_jsonb(repeat('x', 9000))) $$);
SELECT pg_temp.err($$ SELECT durable.task_answer_query(NULL, '1') $$);
SELECT pg_temp.err($$ SELECT durable.task_answer_query(1, '1') $$);
SELECT pg_temp.err($$ SELECT durable.task_answer_query(-65536, to_jsonb(repeat('x', 70000))) $$);
SELECT pg_temp.state() = :'before' AS unchanged;
