-- the one-row model with a lease index (m_onerowl) behind functions,
-- finish-and-claim: a start and one call that completes the run claimed
-- by the previous iteration and claims the next; 2 calls, 2 commits, like
-- (d) of bench/run.  Run with -D prev=0.
SELECT m_onerowl_start('bench', '{"order": 1234, "to": "ada@example.com"}');
SELECT m_onerowl_poll(:prev, 'bench', 'w') AS prev \gset
