-- one row with durable's work (m_onerowx), finish-and-claim: a start and
-- one call that completes the previous run and claims the next; 2 calls,
-- 2 commits, as (d) of bench/run.  Run with -D prev=0.
SELECT m_onerowx_start('bench', '{"order": 1234, "to": "ada@example.com"}', 'bench');
SELECT coalesce((SELECT token FROM m_onerowx_poll(:prev, 'bench', 'w')), 0) AS prev \gset
