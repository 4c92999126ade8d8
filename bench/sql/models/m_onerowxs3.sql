-- one row with durable's work (m_onerowx), three local steps recorded with
-- the completion: 3 calls, 3 commits, as (s3) of bench/run
SELECT m_onerowx_start('bench', '{"order": 1234, "to": "ada@example.com"}', 'bench');
SELECT coalesce((SELECT token FROM m_onerowx_poll(0, 'bench', 'w')), 0) AS tok \gset
\if :tok > 0
SELECT m_onerowx_complete(:tok, '{"ok": true}',
    '[{"seq": 1, "name": "reserve", "result": {"reserved": true}},
      {"seq": 2, "name": "charge", "result": {"charged": 1234}},
      {"seq": 3, "name": "notify", "result": {"sent": "ada@example.com"}}]');
\endif
