#!/usr/bin/env bash
# examples/sql_worker.sh: a durable worker in shell and psql, no SDK.
#
# It serves workflow "greet" and its activity "send", both on queue
# $QUEUE (default "greet"):
#   step 1 (local step "compose")  'Hello, <input.name>!'
#   step 2 (activity "send")       pretends to send the greeting
#   result                         {"greeting": ..., "sent": <send's result>}
# Each task is one psql session: task_poll claims it, then the workflow is
# replayed from the top against the journal the task came with (DESIGN.md
# section 2): a journaled step returns its result, a new local step runs
# and is checkpointed, a new activity becomes a command.
#
#   SELECT durable.wf_start('greet', '{"name": "Ada"}', 'greet-1', 'greet');
#   examples/sql_worker.sh &          # connection from PGHOST, PGDATABASE ...
#   SELECT durable.wf_result('greet-1', '10 s');
#
# A production worker would LISTEN on "durable_greet" instead of sleeping
# when idle; psql cannot wait for a notification, so this one naps.
set -euo pipefail
QUEUE=${QUEUE:-greet}
WORKER=${WORKER:-sh-$$}

# one_task: claim and run at most one task; prints "idle" when none was ready
one_task() {
	psql -qAtX -v ON_ERROR_STOP=1 -v queue="$QUEUE" -v worker="$WORKER" <<'SQL'
SELECT t.token IS NOT NULL AS got, t.token, t.kind = 'workflow' AS is_wf,
       t.workflow_id, t.name, t.input, t.journal
  FROM (SELECT) one
  LEFT JOIN LATERAL durable.task_poll(:'queue', :'worker', 1, '10 s') t ON true \gset
\if :got
\if :is_wf
-- seq 1, local step "compose": replay it, or run it and checkpoint it
SELECT coalesce((SELECT e->'result' FROM jsonb_array_elements(:'journal'::jsonb) e
                  WHERE (e->>'seq')::int = 1),
                to_jsonb('Hello, ' || (:'input'::jsonb ->> 'name') || '!')) AS greeting,
       NOT (:'journal'::jsonb @> '[{"seq": 1}]') AS new1 \gset
\if :new1
SELECT durable.step_record(:token, 1, 'compose', :'greeting'::jsonb);
\endif
-- seq 2, activity "send": new -> command; pending -> wait; done -> finish
SELECT coalesce((SELECT e->>'status' FROM jsonb_array_elements(:'journal'::jsonb) e
                  WHERE (e->>'seq')::int = 2), 'new') AS s2 \gset
SELECT :'s2' = 'new' AS s2_new, :'s2' = 'pending' AS s2_pending,
       :'s2' = 'completed' AS s2_done \gset
\if :s2_new
SELECT durable.task_suspend(:token, jsonb_build_array(jsonb_build_object(
           'seq', 2, 'type', 'activity', 'name', 'send', 'queue', :'queue',
           'input', jsonb_build_object('text', :'greeting'::jsonb))));
\elif :s2_pending
SELECT durable.task_suspend(:token, '[]');
\elif :s2_done
SELECT durable.task_complete(:token, jsonb_build_object(
           'greeting', :'greeting'::jsonb, 'sent', e->'result'))
  FROM jsonb_array_elements(:'journal'::jsonb) e WHERE (e->>'seq')::int = 2;
\else
SELECT durable.task_fail(:token, jsonb_build_object('type', 'ActivityFailed',
           'message', 'send failed'), false);
\endif
\echo :workflow_id workflow task done
\else
-- the activity "send" (at-least-once): here it only builds a receipt
SELECT durable.task_complete(:token, jsonb_build_object(
           'to', :'workflow_id', 'chars', length(:'input'::jsonb ->> 'text')));
\echo :workflow_id activity :name done
\endif
\else
\echo idle
\endif
SQL
}

while :; do
	if ! out=$(one_task 2>&1); then
		# e.g. DU004: the lease ran out and another worker has the task
		echo "[$WORKER] task failed: $out" >&2
		sleep 1
		continue
	fi
	out=$(printf '%s\n' "$out" | grep -v '^$' || true)
	if [ "$out" = idle ]; then sleep 0.2; else echo "[$WORKER] $out"; fi
done
