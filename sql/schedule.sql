-- schedule: cron parsing and evaluation, schedules fired by tick with
-- overlap policies, pause, trigger, backfill; continue-as-new;
-- signal-with-start.  Time moves with durable.clock_offset.
SET timezone = 'UTC';
\i test/regress/common.sql

-- cron evaluation from a fixed time
SELECT * FROM durable.schedule_next_times('*/15 * * * *', 3, 'UTC', '2030-01-01 10:07:00+00');
SELECT * FROM durable.schedule_next_times('30 2 * * *', 3, 'Europe/Paris', '2030-03-29 12:00:00+00'); -- DST starts 2030-03-31
SELECT * FROM durable.schedule_next_times('0 0 29 2 *', 2, 'UTC', '2030-01-01 00:00:00+00');
SELECT * FROM durable.schedule_next_times('0 9 * * MON-FRI', 3, 'UTC', '2030-01-04 12:00:00+00'); -- a Friday
SELECT * FROM durable.schedule_next_times('*/20 * * * * *', 3, 'UTC', '2030-01-01 00:00:05+00');
SELECT * FROM durable.schedule_next_times('0 0 1,15 * 1', 4, 'UTC', '2030-01-01 00:00:00+00'); -- day 1, 15 or Monday
SELECT * FROM durable.schedule_next_times('@weekly', 2, 'UTC', '2030-01-01 00:00:00+00');
SELECT * FROM durable.schedule_next_times('every 90s', 2, 'UTC', '2030-01-01 00:00:00+00');
SELECT * FROM durable.schedule_next_times('0 0 31 2 *', 1, 'UTC', '2030-01-01 00:00:00+00'); -- never

-- bad specs and options: clear errors, nothing created
SELECT pg_temp.err($$SELECT durable.schedule_next_times('61 * * * *')$$);
SELECT pg_temp.err($$SELECT durable.schedule_next_times('* * * *')$$);
SELECT pg_temp.err($$SELECT durable.schedule_next_times('*/0 * * * *')$$);
SELECT pg_temp.err($$SELECT durable.schedule_next_times('5-1 * * * *')$$);
SELECT pg_temp.err($$SELECT durable.schedule_next_times('every -5m')$$);
SELECT pg_temp.err($$SELECT durable.schedule_next_times('@sometimes')$$);
SELECT pg_temp.err($$SELECT durable.schedule_next_times('* * * * *', 1, 'Mars/Olympus')$$);
SELECT pg_temp.err($$SELECT durable.schedule_create('s', '0 0 31 2 *', 'wf')$$);
SELECT pg_temp.err($$SELECT durable.schedule_create('s', '* * * * *', 'wf', NULL, '{"overlap": "sometimes"}')$$);
SELECT pg_temp.err($$SELECT durable.schedule_create('s', '* * * * *', 'wf', NULL, '{"colour": "red"}')$$);
SELECT pg_temp.err($$SELECT durable.schedule_create('s', '* * * * *', 'wf', NULL, '{"timezone": "Nowhere/Land"}')$$);
SELECT pg_temp.err($$SELECT durable.schedule_create('s', '* * * * *', 'wf', NULL, '{"catchup_window": "-1m"}')$$);
SELECT pg_temp.err($$SELECT durable.schedule_create(NULL, '* * * * *', 'wf')$$);
SELECT pg_temp.err($$SELECT durable.schedule_pause('nope')$$);
SELECT count(*) AS schedules FROM durable.schedules;

-- a schedule every 10 seconds, overlap skip (default)
SELECT durable.schedule_create('every10', '*/10 * * * * *', 'ping', '{"n": 1}',
                               '{"queue": "sched_q"}') > now() AS first_fire_in_future;
SELECT pg_temp.err($$SELECT durable.schedule_create('every10', '* * * * *', 'ping')$$);
SET durable.clock_offset = '25s';
SELECT durable.tick() >= 1 AS fired;
-- two or three fire times were due; the first started a run, the others were
-- skipped because it is still running
SELECT count(*) AS runs, bool_and(workflow_id ~ '^every10-\d{8}T\d{6}Z$') AS ids_by_fire_time
  FROM durable.workflows WHERE workflow_type = 'ping';
-- (against the shifted clock less a second: this statement runs a moment
-- after the tick, and a 10 s boundary may fall in between)
SELECT fires, skipped >= 1 AS skipped_some, next_fire_at > now() + interval '24s' AS next_in_future
  FROM durable.schedule_list WHERE name = 'every10';
-- the same fire time never starts twice: ticking again does nothing new
SELECT durable.tick() >= 0 AS ticked;
SELECT count(*) AS runs FROM durable.workflows WHERE workflow_type = 'ping';

-- trigger honours overlap skip while the run is open
SELECT durable.schedule_trigger('every10') IS NULL AS trigger_skipped;
-- finish the running one, then trigger starts a new run
SELECT token AS tok FROM durable.task_poll('sched_q', 'w1') \gset
SELECT durable.task_complete(:tok, '"pong"');
SELECT durable.schedule_trigger('every10') ~ '^every10-' AS triggered;
SELECT count(*) AS runs FROM durable.workflows WHERE workflow_type = 'ping';

-- backfill starts every missing fire time in the range (allow_all)
SELECT durable.schedule_backfill('every10', '2030-01-01 00:00:00+00', '2030-01-01 00:01:00+00') AS backfilled;
SELECT durable.schedule_backfill('every10', '2030-01-01 00:00:00+00', '2030-01-01 00:01:00+00') AS backfilled_again;
SELECT pg_temp.err($$SELECT durable.schedule_backfill('every10', '2030-01-02', '2030-01-01')$$);

-- pause: nothing fires; unpause resumes from now
SELECT durable.schedule_pause('every10', 'maintenance');
SELECT paused, note FROM durable.schedule_list WHERE name = 'every10';
SELECT count(*) AS runs_before FROM durable.workflows WHERE workflow_type = 'ping' \gset
SET durable.clock_offset = '60s';
SELECT durable.tick() >= 0 AS ticked;
SELECT count(*) = :runs_before AS nothing_fired_while_paused FROM durable.workflows WHERE workflow_type = 'ping';
SELECT durable.schedule_unpause('every10', 'back') > now() + interval '60s' AS next_after_now;
SELECT paused, note FROM durable.schedule_list WHERE name = 'every10';

-- overlap terminate_other: the open run is terminated by the next fire
SELECT durable.schedule_create('term', '*/10 * * * * *', 'ping2', NULL,
                               '{"queue": "sched_q2", "overlap": "terminate_other"}') IS NOT NULL;
SET durable.clock_offset = '75s';
SELECT durable.tick() >= 1 AS fired;
SET durable.clock_offset = '95s';
SELECT durable.tick() >= 1 AS fired;
SELECT count(*) FILTER (WHERE status = 'running') AS running,
       count(*) FILTER (WHERE status = 'terminated') >= 1 AS older_terminated,
       count(*) FILTER (WHERE status NOT IN ('running', 'terminated')) AS other
  FROM durable.workflows WHERE workflow_type = 'ping2';
SELECT durable.schedule_delete('term');
SELECT durable.schedule_delete('every10');
SELECT count(*) AS schedules FROM durable.schedules;
RESET durable.clock_offset;

-- continue-as-new: the run closes and a new run of the same id starts
SELECT durable.wf_start('counter', '{"i": 0}', 'can-1', 'can_q');
SELECT token AS tok FROM durable.task_poll('can_q', 'w') \gset
SELECT durable.step_record(:tok, 1, 'work', '1');
SELECT pg_temp.err(format($$SELECT durable.task_complete(%s, '"x"', NULL, '{"i": 1}')$$, :tok));
SELECT durable.task_complete(:tok, NULL, NULL, '{"i": 1}');
SELECT status, input FROM durable.workflows WHERE workflow_id = 'can-1' ORDER BY run_id;
SELECT journal, input FROM durable.task_poll('can_q', 'w') \gset
SELECT :'journal' AS fresh_journal, :'input' AS new_input;
SELECT event_type FROM durable.wf_history('can-1');

-- signal-with-start: starts when not running, signals the running one otherwise
SELECT durable.wf_signal_with_start('box', '{}', 'sws-1', 'item', '1');
SELECT durable.wf_signal_with_start('box', '{}', 'sws-1', 'item', '2');
SELECT count(*) AS runs FROM durable.workflows WHERE workflow_id = 'sws-1';
SELECT name, payload FROM durable.signals WHERE run_id =
    (SELECT run_id FROM durable.workflows WHERE workflow_id = 'sws-1') ORDER BY signal_no;

-- after a backfill, last_workflow_id still names the latest fire's run
SELECT durable.schedule_create('lastfire', '0 3 * * *', 'ping4', NULL,
                               '{"queue": "sched_q4", "overlap": "allow_all"}') IS NOT NULL;
SELECT durable.schedule_trigger('lastfire') AS triggered_id \gset
SELECT durable.schedule_backfill('lastfire', '2029-01-01', '2029-01-04') AS backfilled;
SELECT last_workflow_id = :'triggered_id' AS last_is_latest_fire
  FROM durable.schedule_list WHERE name = 'lastfire';
-- two triggers in the same transaction (so the same second) under
-- allow_all are two fires, two runs, no skip
BEGIN;
SELECT durable.schedule_trigger('lastfire') IS NOT NULL AS first,
       durable.schedule_trigger('lastfire') IS NOT NULL AS second;
COMMIT;
SELECT fires, skipped FROM durable.schedule_list WHERE name = 'lastfire';
SELECT count(*) AS runs, count(DISTINCT workflow_id) AS ids,
       bool_and(workflow_id ~ '^lastfire-(\d{8}T\d{6}Z|\d{8}T\d{6}\.\d{6}Z)$') AS id_format
  FROM durable.workflows WHERE workflow_type = 'ping4';
-- units: long names and plurals; sub-second intervals say so
SELECT count(*) FROM durable.schedule_next_times('every 2 seconds', 2);
SELECT count(*) FROM durable.schedule_next_times('every 1 minute', 2);
SELECT count(*) FROM durable.schedule_next_times('every 3 hours', 2);
SELECT durable.schedule_next_times('every 500ms');
SELECT pg_temp.err($$SELECT durable.schedule_next_times('every 5 fortnights')$$);
SELECT durable.schedule_delete('lastfire');

-- schedule_update: change a schedule in place.  NULL keeps a setting; a
-- new spec or time zone recomputes the next fire time from now; the
-- counts and the last run stay.
SELECT durable.schedule_create('upd', '0 3 * * *', 'ping5', '{"v": 1}',
                               '{"queue": "sched_q5", "note": "first"}') IS NOT NULL AS created;
SELECT durable.schedule_trigger('upd') IS NOT NULL AS triggered;
CREATE TEMP TABLE upd_before AS SELECT * FROM durable.schedules WHERE name = 'upd';
-- input, queue, overlap, workflow options and note; spec and time zone kept,
-- so the next fire time stays
SELECT durable.schedule_update('upd', input => '{"v": 2}',
                               options => '{"queue": "sched_q6", "overlap": "allow_all", "note": "second",
                                            "workflow_options": {"priority": 7}}')
       = (SELECT next_fire_at FROM upd_before) AS next_unchanged;
SELECT spec, timezone, workflow_type, input, queue, overlap, workflow_options, note, fires, paused,
       last_workflow_id = (SELECT last_workflow_id FROM upd_before) AS same_last_run
  FROM durable.schedules WHERE name = 'upd';
-- a new spec: the next fire time follows it, from now
SELECT durable.schedule_update('upd', spec => 'every 1h') AS new_next \gset
SELECT spec, next_fire_at = :'new_next' AS returns_next,
       next_fire_at <> (SELECT next_fire_at FROM upd_before) AS next_moved,
       next_fire_at - now() <= interval '1 hour' AS within_the_hour
  FROM durable.schedules WHERE name = 'upd';
-- a new time zone too; a new workflow type; JSON null clears the input; pause
SELECT durable.schedule_update('upd', spec => '0 9 * * *', workflow => 'ping6', input => 'null',
                               options => '{"timezone": "Asia/Tokyo", "paused": true}') IS NOT NULL AS updated;
SELECT spec, timezone, workflow_type, input IS NULL AS no_input, paused,
       extract(hour FROM next_fire_at AT TIME ZONE 'Asia/Tokyo') AS tokyo_hour
  FROM durable.schedules WHERE name = 'upd';
-- the next fire starts the new workflow type with the new options
SELECT durable.schedule_update('upd', options => '{"paused": false}') IS NOT NULL AS unpaused;
SELECT durable.schedule_trigger('upd') AS fired_id \gset
SELECT workflow_type, queue, priority, input FROM durable.workflows WHERE workflow_id = :'fired_id';
-- bad input: a clear error, nothing changed
CREATE TEMP TABLE upd_mark AS SELECT * FROM durable.schedules WHERE name = 'upd';
SELECT pg_temp.err($$SELECT durable.schedule_update('nope', spec => 'every 1h')$$);
SELECT pg_temp.err($$SELECT durable.schedule_update(NULL)$$);
SELECT pg_temp.err($$SELECT durable.schedule_update('upd', spec => '61 * * * *')$$);
SELECT pg_temp.err($$SELECT durable.schedule_update('upd', spec => '0 0 31 2 *')$$);
SELECT pg_temp.err($$SELECT durable.schedule_update('upd', spec => '')$$);
SELECT pg_temp.err($$SELECT durable.schedule_update('upd', options => '{"colour": "red"}')$$);
SELECT pg_temp.err($$SELECT durable.schedule_update('upd', options => '{"timezone": "Nowhere/Land"}')$$);
SELECT pg_temp.err($$SELECT durable.schedule_update('upd', options => '{"overlap": "sometimes"}')$$);
SELECT pg_temp.err($$SELECT durable.schedule_update('upd', options => '{"workflow_options": {"request_id": "x"}}')$$);
SELECT (SELECT row(s.*)::text FROM durable.schedules s WHERE name = 'upd')
     = (SELECT row(m.*)::text FROM upd_mark m) AS unchanged;
SELECT durable.wf_terminate(workflow_id) FROM durable.workflows
 WHERE workflow_type IN ('ping5', 'ping6') AND status = 'running' ORDER BY workflow_id;
SELECT durable.schedule_delete('upd');
