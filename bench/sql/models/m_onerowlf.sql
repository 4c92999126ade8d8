-- the one-row model with a lease index (m_onerowl) behind functions:
-- start, claim, complete; 3 calls, 3 commits (see schema.sql)
SELECT m_onerowl_start('bench', '{"order": 1234, "to": "ada@example.com"}');
SELECT m_onerowl_poll(0, 'bench', 'w') AS tok \gset
\if :tok > 0
SELECT m_onerowl_complete(:tok, '{"ok": true}');
\endif
