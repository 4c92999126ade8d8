-- search_attributes: typed search attributes declared per namespace
-- (search_attribute_add / _remove): values checked where runs get them,
-- compared as their type by wf_list / wf_count, shown typed by
-- durable.search_attribute_values.  Everything here is in namespace
-- sa_ns; ids start with "sa-", the queue is "saq".
\i test/regress/common.sql
SELECT durable.namespace_create('sa_ns');
SET durable.namespace = 'sa_ns';
-- a value set before any declaration
SELECT durable.wf_start('order', NULL, 'sa-legacy', 'saq', '{"search_attributes": {"Legacy": "x"}}');

SELECT durable.search_attribute_add('CustomerId', 'keyword');
SELECT durable.search_attribute_add('Notes', 'text');
SELECT durable.search_attribute_add('Amount', 'int');
SELECT durable.search_attribute_add('Score', 'double');
SELECT durable.search_attribute_add('Vip', 'bool');
SELECT durable.search_attribute_add('Due', 'datetime');
SELECT durable.search_attribute_add('Tags', 'KeywordList');   -- Temporal's spelling
-- the same declaration again changes nothing
SELECT durable.search_attribute_add('Amount', 'int');
SELECT name, type FROM durable.search_attribute_list WHERE namespace = 'sa_ns' ORDER BY name;

-- bad declarations: a clear error, nothing changed
SELECT pg_temp.err($$ SELECT durable.search_attribute_add('Amount', 'double') $$);
SELECT pg_temp.err($$ SELECT durable.search_attribute_add('Legacy', 'int') $$);
SELECT pg_temp.errd($$ SELECT durable.search_attribute_add('Legacy', 'int') $$);
SELECT pg_temp.err($$ SELECT durable.search_attribute_add('1st', 'int') $$);
SELECT pg_temp.err($$ SELECT durable.search_attribute_add('a-b', 'int') $$);
SELECT pg_temp.err($$ SELECT durable.search_attribute_add('', 'int') $$);
SELECT pg_temp.err($$ SELECT durable.search_attribute_add(NULL, 'int') $$);
SELECT pg_temp.err($$ SELECT durable.search_attribute_add('workflowid', 'keyword') $$);
SELECT pg_temp.err($$ SELECT durable.search_attribute_add('X', 'integer') $$);
SELECT pg_temp.err($$ SELECT durable.search_attribute_add('X', NULL) $$);
SELECT pg_temp.err($$ SELECT durable.search_attribute_add(repeat('x', 65), 'int') $$);
SELECT pg_temp.err($$ SELECT durable.search_attribute_remove('Nope') $$);
SELECT name, type FROM durable.search_attribute_list WHERE namespace = 'sa_ns' ORDER BY name;

-- runs get values that fit
SELECT durable.wf_start('order', NULL, 'sa-1', 'saq', '{"search_attributes": {"CustomerId": "c-1", "Amount": 100, "Score": 2.5, "Vip": true, "Due": "2026-06-01T10:00:00+02:00", "Tags": ["red", "big"], "Notes": "first order"}}');
SELECT durable.wf_start('order', NULL, 'sa-2', 'saq', '{"search_attributes": {"CustomerId": "c-2", "Amount": 20, "Score": 1, "Vip": false, "Due": "2026-06-01T09:00:00Z", "Tags": ["blue"]}}');
SELECT durable.wf_start('order', NULL, 'sa-3', 'saq', '{"search_attributes": {"CustomerId": "d-3", "Amount": -5, "Tags": [], "Undeclared": {"any": "json"}}}');

-- values that do not fit their declared type: DU001, nothing changed
SELECT pg_temp.state() AS before \gset
SELECT pg_temp.err(format($$ SELECT durable.wf_start('order', NULL, 'sa-bad', 'saq', %L) $$, o))
  FROM unnest(ARRAY[
    '{"search_attributes": {"Amount": "100"}}',
    '{"search_attributes": {"Amount": 1.5}}',
    '{"search_attributes": {"Amount": 1e20}}',
    '{"search_attributes": {"Score": "2.5"}}',
    '{"search_attributes": {"Score": 1e400}}',
    '{"search_attributes": {"Vip": "true"}}',
    '{"search_attributes": {"Due": "tomorrow"}}',
    '{"search_attributes": {"Due": 20260601}}',
    '{"search_attributes": {"CustomerId": 7}}',
    '{"search_attributes": {"Notes": ["a"]}}',
    '{"search_attributes": {"Tags": "red"}}',
    '{"search_attributes": {"Tags": ["red", 1]}}']) o;
SELECT pg_temp.state() = :'before' AS unchanged;
-- a whole number written as 3.0 is one
SELECT durable.wf_start('order', NULL, 'sa-4', 'saq', '{"search_attributes": {"Amount": 3.0, "Vip": false}}');

-- upserts from workflow code are checked the same way
\i test/regress/tasks.sql
SELECT kind, workflow_id FROM pg_temp.poll('saq', 5) ORDER BY workflow_id;
SELECT pg_temp.err(format($$ SELECT durable.task_upsert_search_attributes(%s, 1, '{"Amount": "lots"}') $$, pg_temp.tok('sa-2')));
SELECT durable.task_upsert_search_attributes(pg_temp.tok('sa-2'), 1, '{"Amount": 25, "Vip": null}');
SELECT options->'search_attributes' AS sa_2 FROM durable.runs WHERE workflow_id = 'sa-2';

-- wf_list / wf_count compare declared attributes as their type
CREATE FUNCTION pg_temp.ids(q text) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(workflow_id, ' ' ORDER BY workflow_id), '-')
      FROM durable.wf_list('WorkflowId STARTS_WITH ''sa-'' AND (' || q || ')', 100) $$;
SELECT q, pg_temp.ids(q) AS ids, durable.wf_count('WorkflowId STARTS_WITH ''sa-'' AND (' || q || ')') AS n
  FROM unnest(ARRAY[
    'CustomerId = ''c-1''',
    'CustomerId IN (''c-2'', ''d-3'')',
    'CustomerId STARTS_WITH ''c-''',
    'Amount > 20',
    'Amount BETWEEN 0 AND 50',
    'Amount = 3',
    'Score >= 1.5',
    'Vip = true',
    'Vip = false',
    'Vip IS NULL',
    -- as times: 10:00+02 is before 09:00Z (as text it would sort after)
    'Due < ''2026-06-01T09:00:00Z''',
    'Due > ''2026-06-01T08:30:00+00:00''',
    'Tags = ''red''',
    'Tags IN (''blue'', ''green'')',
    'Tags != ''red''',
    'Notes = ''first order''',
    'Undeclared IS NOT NULL']) q;
-- a query that does not fit a declared type: DU001 with the position
SELECT pg_temp.err($$ SELECT durable.wf_count('Amount = ''x''') $$);
SELECT pg_temp.err($$ SELECT durable.wf_count('Amount = 1.5') $$);
SELECT pg_temp.err($$ SELECT durable.wf_count('Score > ''high''') $$);
SELECT pg_temp.err($$ SELECT durable.wf_count('Vip = 1') $$);
SELECT pg_temp.err($$ SELECT durable.wf_count('Vip BETWEEN false AND true') $$);
SELECT pg_temp.err($$ SELECT durable.wf_count('Due > ''soon''') $$);
SELECT pg_temp.err($$ SELECT durable.wf_count('Tags > ''a''') $$);
SELECT pg_temp.err($$ SELECT durable.wf_count('Tags STARTS_WITH ''r''') $$);
-- a batch query is typed too
SELECT pg_temp.err($$ SELECT durable.batch_start('cancel', 'Amount = ''x''') $$);

-- fuzz: 3000 queries of random tokens over the declared attributes
-- either run or fail with DU001, never another error (a cast that fails,
-- an operator that does not exist)
SELECT setseed(0.17);
WITH v(w) AS (SELECT unnest(ARRAY['CustomerId', 'Notes', 'Amount', 'Score', 'Vip', 'Due', 'Tags',
        '=', '!=', '<', '>=', '<>', 'IN', 'NOT', 'AND', 'OR', '(', ')', ',', '''c-1''',
        '''2026-06-01T09:00:00Z''', '''now''', '1', '-2.5', '3.0', '9e999999', '1e400', 'BETWEEN',
        'STARTS_WITH', 'IS', 'NULL', 'true', 'false', '''true''', '''''', '"x"'])),
     q AS (SELECT i, (SELECT string_agg(w, ' ') FROM (SELECT w FROM v ORDER BY random()
                                                       LIMIT 1 + (i % 9)) s) AS q
             FROM generate_series(1, 3000) i)
SELECT split_part(pg_temp.err(format('SELECT durable.wf_count(%L)', q)), ':', 1) AS outcome,
       count(*) > 0 AS seen
  FROM q GROUP BY 1 ORDER BY 1;

-- the typed view
SELECT workflow_id, name, type, text_value, int_value, double_value, bool_value,
       datetime_value AT TIME ZONE 'UTC' AS due_utc, keywords_value
  FROM durable.search_attribute_values WHERE workflow_id LIKE 'sa-%'
 ORDER BY workflow_id, name;

-- equality filters can use the index of runs that have attributes (the
-- shape wf_list writes for a declared attribute's =)
SET enable_seqscan = off;
EXPLAIN (COSTS OFF)
SELECT run_id FROM durable.runs r
 WHERE r.options ? 'search_attributes'
   AND r.options->'search_attributes' @> jsonb_build_object('CustomerId', 'c-1');
RESET enable_seqscan;

-- removed: the values stay, compared as untyped JSON again (as text,
-- 10:00+02 sorts after 09:00Z)
SELECT durable.search_attribute_remove('Due');
SELECT pg_temp.ids('Due < ''2026-06-01T09:00:00Z''') AS untyped_due;
SELECT durable.wf_start('order', NULL, 'sa-5', 'saq', '{"search_attributes": {"Due": "whenever"}}');

RESET durable.namespace;
