-- the one-row model behind functions: start, claim, complete; 3 calls,
-- 3 commits (see m_onerow_start in schema.sql)
SELECT m_onerow_start('bench', '{"order": 1234, "to": "ada@example.com"}');
SELECT m_onerow_poll(0, 'bench', 'w') AS tok \gset
\if :tok > 0
SELECT m_onerow_complete(:tok, '{"ok": true}');
\endif
