-- bench/sql/setup.sql: schema of the benchmark database (run once per cluster)
CREATE EXTENSION durable;

-- (a) the baseline: a hand-written SKIP LOCKED queue, tuned like
-- durable.tasks (fillfactor, eager autovacuum, a partial index in claim order)
CREATE TABLE jobs (
    id          bigserial PRIMARY KEY,
    payload     jsonb NOT NULL,
    priority    int NOT NULL DEFAULT 0,
    state       text NOT NULL DEFAULT 'ready' CHECK (state IN ('ready', 'claimed')),
    worker      text,
    claimed_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE jobs SET (fillfactor = 70,
    autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_cost_delay = 0);
CREATE INDEX jobs_claim ON jobs (priority DESC, id) WHERE state = 'ready';

-- (f) the same queue behind three PL/pgSQL functions (plans kept, like
-- durable's): what calling a server-side API instead of plain statements
-- costs, i.e. the ceiling for any extension with a function interface
CREATE FUNCTION jobs_enqueue(p jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
BEGIN
    INSERT INTO public.jobs (payload) VALUES (p);
END $$;
CREATE FUNCTION jobs_claim(w text) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
DECLARE
    job bigint;
BEGIN
    UPDATE public.jobs SET state = 'claimed', worker = w, claimed_at = now()
     WHERE id = (SELECT id FROM public.jobs WHERE state = 'ready'
                  ORDER BY priority DESC, id LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING id INTO job;
    RETURN coalesce(job, 0);
END $$;
CREATE FUNCTION jobs_delete(job bigint) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
BEGIN
    DELETE FROM public.jobs WHERE id = job;
END $$;

-- wf_list's cost per page: follow next_page_token through pages of 100
-- and return the mean milliseconds per page
CREATE FUNCTION list_page_ms(q text, pages int) RETURNS numeric
LANGUAGE plpgsql AS $$
DECLARE
    tok text;
    t0 timestamptz := clock_timestamp();
    r record;
BEGIN
    FOR i IN 1 .. pages LOOP
        FOR r IN SELECT next_page_token FROM durable.wf_list(q, 100, tok) LOOP
            tok := r.next_page_token;
        END LOOP;
    END LOOP;
    RETURN round((extract(epoch FROM clock_timestamp() - t0) * 1000 / pages)::numeric, 2);
END $$;
