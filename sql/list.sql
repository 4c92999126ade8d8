-- list: wf_list and wf_count with Temporal's visibility query language,
-- parsed in C into a parameterised statement (the query's text never
-- reaches the SQL), keyset pages, and DU001 with the position for a
-- malformed query.  Ids start with "ls-", queues with "lsq"; every query
-- keeps to them with WorkflowId STARTS_WITH 'ls-'.
\i test/regress/common.sql
\i test/regress/tasks.sql
CREATE FUNCTION pg_temp.ids(q text, n int DEFAULT 100) RETURNS text
LANGUAGE sql AS $$
    SELECT coalesce(string_agg(workflow_id, ' ' ORDER BY ord), '-')
      FROM durable.wf_list('WorkflowId STARTS_WITH ''ls-'' AND (' || q || ')', n)
           WITH ORDINALITY AS x(namespace, workflow_id, run_id, workflow_type, queue, status,
                                created_at, closed_at, search_attributes, memo,
                                next_page_token, ord) $$;
CREATE FUNCTION pg_temp.cnt(q text) RETURNS bigint
LANGUAGE sql AS $$ SELECT durable.wf_count('WorkflowId STARTS_WITH ''ls-'' AND (' || q || ')') $$;
-- all pages of a query, page_size at a time, following next_page_token
CREATE FUNCTION pg_temp.pages(q text, page_size int) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    tok text;
    out text := '';
    n int;
    r record;
BEGIN
    LOOP
        n := 0;
        FOR r IN SELECT * FROM durable.wf_list(q, page_size, tok) LOOP
            out := out || r.workflow_id || ' ';
            tok := r.next_page_token;
            n := n + 1;
        END LOOP;
        EXIT WHEN n < page_size;
        out := out || '| ';
    END LOOP;
    RETURN out;
END $$;

SELECT durable.wf_start('order', NULL, 'ls-o1', 'lsq',
    '{"search_attributes": {"CustomerId": "a", "Amount": 10, "Vip": true}}');
SELECT durable.wf_start('order', NULL, 'ls-o2', 'lsq',
    '{"search_attributes": {"CustomerId": "b", "Amount": 20}, "memo": {"note": "rush"}}');
SELECT durable.wf_start('order', NULL, 'ls-o3', 'lsq2',
    '{"search_attributes": {"CustomerId": "c", "Amount": 5.5}}');
SELECT durable.wf_start('refund', NULL, 'ls-r1', 'lsq');
SELECT durable.wf_start('refund', NULL, 'ls-r2', 'lsq2');
-- ls-o2 completes, ls-r1 fails, ls-o3 is terminated
SELECT count(*) FROM pg_temp.poll('lsq', 10);
SELECT durable.task_complete(pg_temp.tok('ls-o2'), '"ok"');
SELECT durable.task_fail(pg_temp.tok('ls-r1'), '{"type": "Nope"}', false);
SELECT durable.wf_terminate('ls-o3');

-- filters on the built-in attributes and on search attributes
SELECT q, pg_temp.ids(q) AS ids, pg_temp.cnt(q) AS n FROM unnest(ARRAY[
    'RunId > 0',
    'WorkflowType = ''order''',
    'WorkflowType = ''order'' AND ExecutionStatus = ''Running''',
    'ExecutionStatus IN (''Completed'', ''Failed'', ''Terminated'')',
    'ExecutionStatus = ''failed'' OR ExecutionStatus = ''TimedOut''',
    'TaskQueue = ''lsq2'' AND NOT (WorkflowType = ''refund'')',
    'CustomerId IN (''a'', ''b'')',
    'CustomerId NOT IN (''a'', ''b'')',
    'Amount > 6',
    'Amount BETWEEN 5 AND 15',
    'Amount NOT BETWEEN 5 AND 15',
    'Vip = true',
    '`CustomerId` = "c"',
    'CustomerId IS NULL',
    'CloseTime IS NULL',
    'CloseTime IS NOT NULL AND StartTime > ''2000-01-01T00:00:00Z''',
    'WorkflowId STARTS_WITH ''ls-r''',
    'WorkflowId = ''ls-o1'' OR (WorkflowId != ''ls-o2'' AND WorkflowType <> ''order'')',
    'RunId IN (0, -1)',
    'WorkflowType = ''x''''; DROP TABLE durable.runs; --''']) q;
SELECT count(*) > 0 AS runs_still_there FROM durable.runs;
-- what a row holds
SELECT workflow_id, workflow_type, queue, status, closed_at IS NOT NULL AS closed,
       search_attributes, memo, next_page_token IS NOT NULL AS has_token
  FROM durable.wf_list('WorkflowId = ''ls-o2''');

-- keyset pages: the pages, joined, are the whole ordered list
SELECT pg_temp.pages('WorkflowId STARTS_WITH ''ls-'' ORDER BY WorkflowId', 2);
SELECT pg_temp.pages('WorkflowId STARTS_WITH ''ls-'' ORDER BY WorkflowId DESC', 2);
SELECT pg_temp.pages('WorkflowId STARTS_WITH ''ls-'' ORDER BY RunId', 3);
SELECT pg_temp.pages('WorkflowId STARTS_WITH ''ls-''', 2);
SELECT pg_temp.pages('WorkflowId STARTS_WITH ''ls-''', 2)
     = pg_temp.pages('WorkflowId STARTS_WITH ''ls-'' ORDER BY StartTime DESC', 2) AS default_is_newest_first;
-- ORDER BY CloseTime: closed runs only, last closed first
SELECT pg_temp.pages('WorkflowId STARTS_WITH ''ls-'' ORDER BY CloseTime DESC', 2);

-- malformed queries: DU001 with the position, nothing run
SELECT q, pg_temp.err(format('SELECT durable.wf_count(%L)', q)) FROM unnest(ARRAY[
    'WorkflowType =',
    'WorkflowType ''order''',
    '(WorkflowType = ''order''',
    'WorkflowType = ''order'')',
    'ExecutionStatus = ''Sleeping''',
    'StartTime > ''not a time''',
    'StartTime > 5',
    'RunId = ''abc''',
    'RunId = 99999999999999999999',
    'WorkflowType = 1',
    'WorkflowType STARTS_WITH 1',
    'StartTime STARTS_WITH ''2026''',
    'Amount IN ()',
    'Amount IN (1, 2',
    'Amount NOT = 1',
    'Amount IS NOTHING',
    'Amount = 1.',
    'Amount = 1x',
    'Amount = 1e999999',
    'Amount = -1e-999999',
    'Amount = ''unterminated',
    '`unterminated = 1',
    '`` = 1',
    'Amount ! 1',
    'Amount == 1',
    'Amount = 1 extra',
    'Amount = 1 ORDER WorkflowId',
    'ORDER BY Amount',
    'ORDER BY StartTime sideways',
    'WorkflowType = ''a'' AND',
    'Amount = 1 # 2',
    '= 1']) q;
SELECT pg_temp.err(format('SELECT durable.wf_count(%L)', repeat('(', 70) || 'Amount = 1' || repeat(')', 70)));
SELECT pg_temp.err(format('SELECT durable.wf_count(%L)', 'Amount IN (' || (SELECT string_agg(i::text, ',') FROM generate_series(1, 1001) i) || ')'));
SELECT pg_temp.err(format('SELECT durable.wf_count(%L)', 'WorkflowId = ''' || repeat('x', 10000) || ''''));
SELECT pg_temp.err(format('SELECT durable.wf_count(%L)', E'Amount = 1\u0001'));
SELECT pg_temp.err($$SELECT durable.wf_count('Amount = 1 ORDER BY StartTime')$$);
SELECT pg_temp.err($$SELECT count(*) FROM durable.wf_list('', 0)$$);
SELECT pg_temp.err($$SELECT count(*) FROM durable.wf_list('', NULL)$$);
SELECT pg_temp.err($$SELECT count(*) FROM durable.wf_list('', 1001)$$);
SELECT pg_temp.err($$SELECT count(*) FROM durable.wf_list('', 10, 'garbage')$$);
SELECT pg_temp.err($$SELECT count(*) FROM durable.wf_list('', 10, 'v1|StartTime|d|x|1')$$);
-- a token of another order is refused
SELECT next_page_token AS tok FROM durable.wf_list('ORDER BY WorkflowId', 1) \gset
SELECT pg_temp.err(format('SELECT count(*) FROM durable.wf_list(%L, 10, %L)', 'ORDER BY RunId', :'tok'));
SELECT durable.wf_count(NULL) >= 5 AS null_is_everything;

-- fuzz: 3000 queries of random tokens either run or fail with DU001,
-- never another error
SELECT setseed(0.42);
WITH v(w) AS (SELECT unnest(ARRAY['WorkflowType', 'ExecutionStatus', 'StartTime', 'CloseTime',
        'RunId', 'Amount', '`A b`', '=', '!=', '<', '>=', '==', '<>', 'IN', 'NOT', 'AND', 'OR', '(', ')',
        ',', '''order''', '''Running''', '''2026-01-01''', '1', '-2.5e3', '9e999999', 'BETWEEN',
        'STARTS_WITH', 'IS', 'NULL', 'ORDER', 'BY', 'DESC', 'true', '''', '`', '"x"', '#'])),
     q AS (SELECT i, (SELECT string_agg(w, ' ') FROM (SELECT w FROM v ORDER BY random()
                                                       LIMIT 1 + (i % 9)) s) AS q
             FROM generate_series(1, 3000) i)
SELECT split_part(pg_temp.err(format('SELECT durable.wf_count(%L)', q)), ':', 1) AS outcome,
       count(*) > 0 AS seen
  FROM q GROUP BY 1 ORDER BY 1;

-- workflow code sets search attributes (null removes one), journaled as a
-- step: the same seq again changes nothing
SELECT durable.task_upsert_search_attributes(pg_temp.tok('ls-o1'), 1,
    '{"Stage": "waiting", "CustomerId": null}');
SELECT search_attributes FROM durable.wf_list('WorkflowId = ''ls-o1''');
SELECT durable.task_upsert_search_attributes(pg_temp.tok('ls-o1'), 1, '{"Stage": "other"}');
SELECT pg_temp.ids('Stage = ''waiting''') AS waiting, pg_temp.ids('Stage = ''other''') AS other;
SELECT seq, kind, name, status, input FROM durable.journal WHERE workflow_id = 'ls-o1';
SELECT pg_temp.state() AS before \gset
SELECT pg_temp.err(format('SELECT durable.task_upsert_search_attributes(%s, %s, %L)',
                          pg_temp.tok('ls-o1'), s, a))
  FROM (VALUES ('NULL', '{"a": 1}'), ('0', '{"a": 1}'), ('2', '[1]'), ('2', '"x"'),
               ('2', '{"": 1}'), ('2', NULL)) v(s, a);
SELECT pg_temp.err(format('SELECT durable.task_upsert_search_attributes(%s, 2, %L)',
                          pg_temp.tok('ls-o1'), E'{"a\\u0001": 1}'));
SELECT pg_temp.err(format('SELECT durable.step_record(%s, 1, %L, %L)', pg_temp.tok('ls-o1'), 'x', '1'));
SELECT pg_temp.err('SELECT durable.task_upsert_search_attributes(424242, 2, ''{"a": 1}'')');
SELECT pg_temp.state() = :'before' AS unchanged;

SELECT durable.wf_terminate(w) FROM unnest(ARRAY['ls-o1', 'ls-r2']) w;
