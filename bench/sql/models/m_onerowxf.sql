-- one row with durable's work (m_onerowx) behind functions: start, claim,
-- complete; 3 calls, 3 commits, as (b) of bench/run
SELECT m_onerowx_start('bench', '{"order": 1234, "to": "ada@example.com"}', 'bench');
SELECT coalesce((SELECT token FROM m_onerowx_poll(0, 'bench', 'w')), 0) AS tok \gset
\if :tok > 0
SELECT m_onerowx_complete(:tok, '{"ok": true}');
\endif
