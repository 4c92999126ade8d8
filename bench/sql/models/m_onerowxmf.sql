-- m_onerowx's table with the minimal one-row statements behind functions
-- (m_onerowxm_*): 3 calls, 3 commits
SELECT m_onerowxm_start('bench', '{"order": 1234, "to": "ada@example.com"}');
SELECT m_onerowxm_poll(0, 'bench', 'w') AS tok \gset
\if :tok > 0
SELECT m_onerowxm_complete(:tok, '{"ok": true}');
\endif
