-- (f) the baseline queue (a) behind PL/pgSQL functions: one pgbench
-- transaction = one job = 3 commits, each a function call running one
-- kept plan, as durable's calls do.
SELECT jobs_enqueue('{"order": 1234, "to": "ada@example.com"}');
SELECT jobs_claim('bench') AS job \gset
\if :job > 0
SELECT jobs_delete(:job);
\endif
