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
