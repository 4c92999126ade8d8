-- the one-row model behind functions, finish-and-claim: a start and one
-- call that completes the run claimed by the previous iteration and
-- claims the next; 2 calls, 2 commits, like (d) of bench/run.
-- Run with -D prev=0; :prev carries the held token across iterations.
SELECT m_onerow_start('bench', '{"order": 1234, "to": "ada@example.com"}');
SELECT m_onerow_poll(:prev, 'bench', 'w') AS prev \gset
