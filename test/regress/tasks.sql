-- test/regress/tasks.sql: helpers for files that drive workers by hand.
-- poll(queue, n, lease) claims and remembers tokens in seen; tok(workflow,
-- seq) finds the latest token; wtasks(workflow) lists a run's tasks.
CREATE TEMP TABLE seen (n serial, token bigint, workflow_id text, seq int);
-- poll: claim, remember tokens, show the task with a compact journal
-- ("seq kind name status result-or-error; ...")
CREATE FUNCTION pg_temp.poll(q text, n int DEFAULT 1, lease interval DEFAULT '30 s')
RETURNS TABLE (kind text, workflow_id text, name text, seq int, input jsonb,
               attempt int, journal text, heartbeat jsonb, cancel_requested boolean)
LANGUAGE plpgsql AS $$
DECLARE t record;
BEGIN
    FOR t IN SELECT * FROM durable.task_poll(q, 'worker-1', n, lease) LOOP
        INSERT INTO pg_temp.seen (token, workflow_id, seq) VALUES (t.token, t.workflow_id, t.seq);
        kind := t.kind; workflow_id := t.workflow_id; name := t.name; seq := t.seq;
        input := t.input; attempt := t.attempt; heartbeat := t.heartbeat;
        cancel_requested := t.cancel_requested;
        journal := CASE WHEN t.journal IS NOT NULL THEN coalesce(
                       (SELECT string_agg(concat_ws(' ', j->>'seq', j->>'kind', j->>'name', j->>'status',
                                                    CASE WHEN j->>'error' IS NOT NULL THEN 'error=' || (j->'error')::text
                                                         ELSE (j->'result')::text END), '; ')
                          FROM jsonb_array_elements(t.journal) j), '[]') END;
        RETURN NEXT;
    END LOOP;
END $$;
CREATE FUNCTION pg_temp.tok(wid text, s int DEFAULT NULL) RETURNS bigint
LANGUAGE sql AS $$
    SELECT token FROM pg_temp.seen WHERE workflow_id = wid AND seq IS NOT DISTINCT FROM s
     ORDER BY n DESC LIMIT 1 $$;
-- state(): a fingerprint of every durable table, to prove a call changed nothing
CREATE FUNCTION pg_temp.wtasks(wid text)
RETURNS TABLE (seq int, kind text, state text, attempt int, rerun boolean)
LANGUAGE sql AS $$
    SELECT t.seq, t.kind, t.state, t.attempt, t.rerun FROM durable.tasks t JOIN durable.runs r USING (run_id)
     WHERE r.workflow_id = wid AND r.status = 'running' ORDER BY t.seq $$;
