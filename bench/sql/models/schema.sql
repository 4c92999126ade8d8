-- bench/sql/models/schema.sql: plain-SQL models of durable's rows for a
-- one-step workflow (start, claim, complete; 3 commits), to measure what a
-- data model costs before any engine code runs.  bench/models.sh loads it
-- into the bench database next to the bare queue (bench/sql/setup.sql).
-- Each model writes the rows durable would write, with the same columns
-- and indexes, and nothing else: no access checks, no journal, no leases
-- to expire, no wake-ups.
DROP TABLE IF EXISTS m_today_runs, m_today_tasks, m_lean_runs, m_lean_tasks, m_onerow, m_onerowl,
    m_onerowx, m_onerowx_steps;
CREATE SEQUENCE IF NOT EXISTS m_run_id;
CREATE SEQUENCE IF NOT EXISTS m_token;

-- today: durable.runs and durable.tasks as they are (0.2), with their
-- indexes: a run row plus a task row, 11 index entries per workflow
CREATE TABLE m_today_runs (
    run_id bigint PRIMARY KEY DEFAULT nextval('m_run_id'), namespace text NOT NULL,
    workflow_id text NOT NULL, workflow_type text NOT NULL, queue text NOT NULL,
    status text NOT NULL DEFAULT 'running', input jsonb, output jsonb, error jsonb,
    priority int NOT NULL DEFAULT 0, options jsonb NOT NULL DEFAULT '{}',
    cancel_requested boolean NOT NULL DEFAULT false, parent_run_id bigint,
    deadline_at timestamptz, created_at timestamptz NOT NULL DEFAULT now(),
    closed_at timestamptz, attempt int NOT NULL DEFAULT 1);
CREATE UNIQUE INDEX ON m_today_runs (namespace, workflow_id) WHERE closed_at IS NULL;
CREATE INDEX ON m_today_runs (namespace, workflow_id, run_id);
CREATE INDEX ON m_today_runs (namespace, closed_at) WHERE closed_at IS NOT NULL;
CREATE INDEX ON m_today_runs (deadline_at) WHERE status = 'running' AND deadline_at IS NOT NULL;
CREATE TABLE m_today_tasks (
    run_id bigint NOT NULL, seq int NOT NULL, kind text NOT NULL, namespace text NOT NULL,
    queue text NOT NULL, priority int NOT NULL DEFAULT 0, state text NOT NULL DEFAULT 'ready',
    visible_at timestamptz NOT NULL, token bigint, worker text, attempt int NOT NULL DEFAULT 0,
    claimed_at timestamptz, created_at timestamptz NOT NULL, new_run boolean NOT NULL DEFAULT false,
    PRIMARY KEY (run_id, seq));
ALTER TABLE m_today_tasks SET (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_cost_delay = 0);
CREATE INDEX ON m_today_tasks (namespace, queue, priority DESC, new_run, visible_at) WHERE state = 'ready';
CREATE UNIQUE INDEX ON m_today_tasks (token) WHERE token IS NOT NULL;
CREATE INDEX ON m_today_tasks (visible_at) WHERE state = 'leased';

-- lean: the same two rows with the fewest indexes: no index on what the
-- close changes (no open-id index, no closed_at index: the close is a HOT
-- update), no lease index; 6 index entries per workflow.  What it leaves
-- out would need another way: one open run per workflow id, the purge's
-- order, lease expiry.
CREATE TABLE m_lean_runs (LIKE m_today_runs INCLUDING DEFAULTS);
ALTER TABLE m_lean_runs ADD PRIMARY KEY (run_id);
ALTER TABLE m_lean_runs SET (fillfactor = 80);
CREATE INDEX ON m_lean_runs (namespace, workflow_id, run_id);
CREATE TABLE m_lean_tasks (LIKE m_today_tasks INCLUDING DEFAULTS);
ALTER TABLE m_lean_tasks ADD PRIMARY KEY (run_id, seq);
ALTER TABLE m_lean_tasks SET (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_cost_delay = 0);
CREATE INDEX ON m_lean_tasks (namespace, queue, priority DESC, new_run, visible_at) WHERE state = 'ready';
CREATE UNIQUE INDEX ON m_lean_tasks (token) WHERE token IS NOT NULL;

-- one row: the run row is its own workflow task (no task row); the token
-- is the run id and a claim counter, so no token index; the close is HOT;
-- 5 index entries per workflow, like the issue's target.  Same gaps as
-- lean, and a claim takes the run row's lock.
CREATE TABLE m_onerow (LIKE m_today_runs INCLUDING DEFAULTS);
ALTER TABLE m_onerow ADD PRIMARY KEY (run_id);
ALTER TABLE m_onerow ADD ready boolean NOT NULL DEFAULT true, ADD visible_at timestamptz,
    ADD claims int NOT NULL DEFAULT 0, ADD worker text, ADD claimed_at timestamptz;
ALTER TABLE m_onerow SET (fillfactor = 80);
CREATE INDEX ON m_onerow (namespace, workflow_id, run_id);
CREATE INDEX ON m_onerow (namespace, queue, priority DESC, visible_at) WHERE ready;

-- one row with a lease index: what the one-row model leaves out is how
-- the background worker finds expired leases.  durable finds them in an
-- index (tasks_token); here an index of lease ends, whose predicate the
-- close also changes, so the claim and the close are non-HOT updates that
-- write an entry in every index: 8 index entries per workflow.
CREATE TABLE m_onerowl (LIKE m_onerow INCLUDING DEFAULTS);
ALTER TABLE m_onerowl ADD PRIMARY KEY (run_id);
ALTER TABLE m_onerowl SET (fillfactor = 80);
CREATE INDEX ON m_onerowl (namespace, workflow_id, run_id);
CREATE INDEX ON m_onerowl (namespace, queue, priority DESC, visible_at) WHERE ready;
CREATE INDEX ON m_onerowl (visible_at) WHERE NOT ready AND closed_at IS NULL;

-- both one-row models behind a function interface: their statements as
-- PL/pgSQL functions with kept plans, one call per commit, as durable's
-- API is (wf_start, task_poll, task_complete).  (f) of bench/run does the
-- same for the bare queue.  <table>_poll(prev, ...) is finish-and-claim:
-- it completes the run of token prev (if any) and claims the next one in
-- one call and one commit, like task_poll's done_tokens.
DO $do$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['m_onerow', 'm_onerowl'] LOOP
        EXECUTE format($f$
CREATE FUNCTION %1$s_start(q text, p jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
BEGIN
    INSERT INTO public.%1$s (namespace, workflow_id, workflow_type, queue, input, visible_at)
    VALUES ('default', gen_random_uuid()::text, 'bench', q, p, now());
END $$;
CREATE FUNCTION %1$s_complete(tok bigint, r jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
BEGIN
    UPDATE public.%1$s SET status = 'completed', output = r, closed_at = now()
     WHERE run_id = tok >> 20 AND claims = (tok & 1048575)::int
       AND NOT ready AND status = 'running';
END $$;
CREATE FUNCTION %1$s_poll(prev bigint, q text, w text) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
DECLARE
    tok bigint;
BEGIN
    IF prev > 0 THEN
        PERFORM public.%1$s_complete(prev, '{"ok": true}');
    END IF;
    WITH c AS (SELECT run_id FROM public.%1$s
                WHERE namespace = 'default' AND queue = q AND ready AND visible_at <= now()
                ORDER BY priority DESC, visible_at LIMIT 1 FOR UPDATE SKIP LOCKED)
    UPDATE public.%1$s t SET ready = false, claims = t.claims + 1, worker = w,
           claimed_at = now(), visible_at = now() + interval '5 min'
      FROM c WHERE t.run_id = c.run_id
    RETURNING (t.run_id << 20) | t.claims INTO tok;
    RETURN coalesce(tok, 0);
END $$;$f$, t);
    END LOOP;
END
$do$;

-- one row with durable's work: the one-row design carrying what durable's
-- own statements do on top of a model's (FEATURES=1 of bench/models.sh).
-- durable.runs with its indexes, plus the workflow task's columns and the
-- two indexes that find it: ready in claim order (priority, runs in flight
-- first, fair pass) and leased by lease end, for expiry.  Its functions
-- do what durable's wf_start, task_poll and task_complete do in their
-- statements: the start checks the namespace, numbers the run and takes a
-- fair pass; the claim skips paused runs, starts at a floor, puts an aged
-- task back at its own priority, gives a lease and returns the poll's
-- columns with the journal (empty for a new run) and the run's updates;
-- the completion closes the run under its token and asks whether anything
-- is pending.  What it leaves out is all of durable's work outside its
-- statements (access checks, metrics, wake-ups, claim floors kept in
-- shared memory), so it bounds what durable could reach on one row.
CREATE TABLE m_onerowx (LIKE durable.runs INCLUDING DEFAULTS);
ALTER TABLE m_onerowx ADD PRIMARY KEY (run_id);
ALTER TABLE m_onerowx ADD ready boolean NOT NULL DEFAULT true, ADD visible_at timestamptz,
    ADD claims int NOT NULL DEFAULT 0, ADD worker text, ADD claimed_at timestamptz,
    ADD task_attempt int NOT NULL DEFAULT 0, ADD new_run boolean NOT NULL DEFAULT true,
    ADD pass float8 NOT NULL DEFAULT 'Infinity', ADD aged int NOT NULL DEFAULT 0,
    ADD lease interval;
ALTER TABLE m_onerowx SET (fillfactor = 80);
CREATE UNIQUE INDEX ON m_onerowx (namespace, workflow_id, run_number);
CREATE INDEX ON m_onerowx (deadline_at) WHERE deadline_at IS NOT NULL;
CREATE INDEX ON m_onerowx (parent_run_id) WHERE parent_run_id IS NOT NULL;
CREATE INDEX ON m_onerowx (run_id) WHERE paused;
CREATE INDEX ON m_onerowx USING gin ((options->'search_attributes') jsonb_path_ops)
    WHERE options ? 'search_attributes';
CREATE INDEX ON m_onerowx (namespace, queue, (- priority), new_run, pass) WHERE ready;
CREATE INDEX ON m_onerowx (visible_at) WHERE NOT ready AND closed_at IS NULL;
CREATE TABLE m_onerowx_steps (LIKE durable.steps INCLUDING ALL);

CREATE FUNCTION m_onerowx_start(name text, p jsonb, q text) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
DECLARE
    wid text := gen_random_uuid()::text;
BEGIN
    INSERT INTO public.m_onerowx (namespace, workflow_id, workflow_type, queue, input,
                                  priority, options, created_at, run_number, visible_at, pass)
    SELECT 'default', wid, name, q, p, 0, '{}', now(), 1, now(),
           durable.fair_pass('default', q, NULL, NULL, 0, true)
     WHERE EXISTS (SELECT FROM durable.namespaces WHERE namespace = 'default');
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no namespace';
    END IF;
    RETURN wid;
END $$;
CREATE FUNCTION m_onerowx_complete(tok bigint, r jsonb, steps jsonb DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
DECLARE
    pending boolean;
BEGIN
    IF steps IS NOT NULL THEN
        INSERT INTO public.m_onerowx_steps (run_id, seq, kind, name, status, result,
                                            scheduled_at, resolved_at)
        SELECT tok >> 20, x.seq, 'local', x.name, 'completed', coalesce(x.result, 'null'), now(), now()
          FROM jsonb_to_recordset(steps) AS x(seq int, name text, result jsonb)
        ON CONFLICT (run_id, seq) DO NOTHING;
    END IF;
    UPDATE public.m_onerowx u SET status = 'completed', output = r, error = NULL,
           closed_at = now(), deadline_at = NULL
     WHERE run_id = tok >> 20 AND claims = (tok & 1048575)::int
       AND NOT ready AND status = 'running'
    RETURNING EXISTS (SELECT FROM public.m_onerowx_steps s
                       WHERE s.run_id = u.run_id AND s.status = 'pending')
      INTO pending;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'stale token %', tok;
    END IF;
END $$;
CREATE FUNCTION m_onerowx_poll(prev bigint, q text, w text)
RETURNS TABLE (token bigint, kind text, workflow_id text, run_id bigint, workflow_type text,
               name text, seq int, input jsonb, attempt int, journal jsonb,
               heartbeat jsonb, cancel_requested boolean, lease_until timestamptz,
               updates jsonb)
LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
BEGIN
    IF prev > 0 THEN
        PERFORM public.m_onerowx_complete(prev, '{"ok": true}');
    END IF;
    RETURN QUERY
    WITH c AS (SELECT k.run_id, k.new_run FROM public.m_onerowx k
                WHERE k.namespace = 'default' AND k.queue = q AND k.ready
                  AND k.visible_at <= now() AND NOT k.paused
                  AND (- k.priority, k.new_run, k.pass) >= (-2147483648, false, '-Infinity'::float8)
                ORDER BY - k.priority, k.new_run, k.pass
                LIMIT 1 FOR UPDATE SKIP LOCKED)
    UPDATE public.m_onerowx t SET ready = false, claims = t.claims + 1, worker = w,
           task_attempt = t.task_attempt + 1, claimed_at = now(), new_run = false,
           priority = t.priority - t.aged, aged = 0, lease = interval '30 s',
           visible_at = now() + interval '30 s'
      FROM c WHERE t.run_id = c.run_id
    RETURNING (t.run_id << 20) | t.claims, 'workflow'::text, t.workflow_id, t.run_id,
           t.workflow_type, t.workflow_type, NULL::int, t.input, t.task_attempt,
           CASE WHEN c.new_run THEN '[]'::jsonb
                ELSE (SELECT coalesce(jsonb_agg(jsonb_build_object(
                          'seq', j.seq, 'kind', j.kind, 'name', j.name, 'status', j.status,
                          'result', j.result, 'error', j.error) ORDER BY j.seq), '[]')
                        FROM public.m_onerowx_steps j WHERE j.run_id = t.run_id) END,
           NULL::jsonb, t.cancel_requested, t.visible_at,
           (SELECT jsonb_agg(jsonb_build_object('update_id', d.update_id, 'name', d.name,
                   'args', d.args, 'state', d.state, 'seq', d.seq, 'waiting_on', d.waiting_on)
                   ORDER BY d.update_no)
              FROM durable.updates d WHERE d.run_id = t.run_id AND d.state <> 'rejected');
END $$;

-- m_onerowx's table with m_onerow's minimal statements (no namespace
-- check, fair pass, lease from the step, poll columns, journal, updates or
-- pending check): what durable's row and indexes cost, apart from the
-- work of its statements
CREATE FUNCTION m_onerowxm_start(q text, p jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
BEGIN
    INSERT INTO public.m_onerowx (namespace, workflow_id, workflow_type, queue, input, created_at, run_number, visible_at, pass)
    VALUES ('default', gen_random_uuid()::text, 'bench', q, p, now(), 1, now(), 0);
END $$;
CREATE FUNCTION m_onerowxm_complete(tok bigint, r jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
BEGIN
    UPDATE public.m_onerowx SET status = 'completed', output = r, closed_at = now()
     WHERE run_id = tok >> 20 AND claims = (tok & 1048575)::int AND NOT ready AND status = 'running';
END $$;
CREATE FUNCTION m_onerowxm_poll(prev bigint, q text, w text) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
DECLARE
    tok bigint;
BEGIN
    WITH c AS (SELECT run_id FROM public.m_onerowx
                WHERE namespace = 'default' AND queue = q AND ready AND visible_at <= now()
                ORDER BY - priority, new_run, pass LIMIT 1 FOR UPDATE SKIP LOCKED)
    UPDATE public.m_onerowx t SET ready = false, claims = t.claims + 1, worker = w,
           claimed_at = now(), visible_at = now() + interval '5 min'
      FROM c WHERE t.run_id = c.run_id
    RETURNING (t.run_id << 20) | t.claims INTO tok;
    RETURN coalesce(tok, 0);
END $$;
