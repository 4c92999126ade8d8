-- key_rate: per-key rate limits (queue_set_key_rate): a token bucket per
-- fairness key of a queue, on durable's clock; bad input changes nothing.
-- Ids start with "kr-", queues with "krq".
\i test/regress/common.sql
CREATE FUNCTION pg_temp.take(q text) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(k, ' ' ORDER BY k), '-')
      FROM (SELECT r.fairness_key || ':' || count(*) AS k
              FROM durable.task_poll(q, 'w', 100) p JOIN durable.runs r USING (run_id)
             GROUP BY r.fairness_key) x $$;

SET durable.clock_offset = 0;
SELECT count(*) FROM durable.wf_start_many('k', array_fill('{}'::jsonb, ARRAY[6]), NULL, 'krq', '{"fairness_key": "a"}');
SELECT count(*) FROM durable.wf_start_many('k', array_fill('{}'::jsonb, ARRAY[6]), NULL, 'krq', '{"fairness_key": "b"}');
-- one per second and key, in bursts of two
SELECT durable.queue_set_key_rate('krq', 1, 2);
SELECT key_rate, key_rate_burst FROM durable.queue_stats WHERE queue = 'krq';
SELECT pg_temp.take('krq') AS at_0s;
SELECT pg_temp.take('krq') AS at_0s_again;
SET durable.clock_offset = '1s';
SELECT pg_temp.take('krq') AS at_1s;
SELECT pg_temp.take('krq') AS at_1s_again;
-- ten seconds later the buckets hold the burst, not ten tokens
SET durable.clock_offset = '11s';
SELECT pg_temp.take('krq') AS at_11s;
SELECT fairness_key, bucket FROM durable.key_buckets WHERE queue = 'krq' ORDER BY 1;
-- buckets full again by now are pruned by the periodic work
SET durable.clock_offset = '20s';
SELECT durable.tick() >= 0 AS ticked;
SELECT count(*) AS buckets_after_refill FROM durable.key_buckets WHERE queue = 'krq';
-- lifted: the rest comes out, the buckets are gone
SELECT durable.queue_set_key_rate('krq', NULL);
SELECT pg_temp.take('krq') AS lifted;
SELECT count(*) AS buckets FROM durable.key_buckets WHERE queue = 'krq';
SELECT count(durable.wf_terminate(workflow_id)) FROM durable.workflows WHERE queue = 'krq' AND status = 'running';
RESET durable.clock_offset;

-- bad input changes nothing
SELECT pg_temp.state() AS before \gset
SELECT pg_temp.errd($$SELECT durable.queue_set_key_rate('krq', 0)$$);
SELECT pg_temp.errd($$SELECT durable.queue_set_key_rate('krq', 'NaN')$$);
SELECT pg_temp.errd($$SELECT durable.queue_set_key_rate('krq', 1, 0)$$);
SELECT pg_temp.errd($$SELECT durable.queue_set_key_rate('krq', NULL, 5)$$);
SELECT pg_temp.errd($$SELECT durable.queue_set_key_rate('bad queue', 1)$$);
SELECT pg_temp.state() = :'before' AS unchanged;
SELECT key_rate, key_rate_burst FROM durable.queues WHERE queue = 'krq';
