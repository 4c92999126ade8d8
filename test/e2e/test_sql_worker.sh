#!/usr/bin/env bash
# test/e2e/test_sql_worker.sh: run examples/sql_worker.sh (a worker in shell
# and psql, no SDK) against the cluster in PG*; two copies of it serve
# three "greet" workflows end to end.  Checks each result, each journal,
# that the local step was checkpointed once per run, and that nothing is
# left in the task table.  Exits non-zero with a message on failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
LOG=$(mktemp -d "${DURABLE_TMP:-/tmp}/sql-worker-XXXXXX")
pids=()
fail() { echo "FAILED: $*"; for f in "$LOG"/*.log; do echo "--- $f"; cat "$f"; done; exit 1; }
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; }
trap cleanup EXIT
q() { psql -qAtX -v ON_ERROR_STOP=1 "$@"; }

q -c "CREATE EXTENSION IF NOT EXISTS durable" || fail "cannot create the extension"
q >/dev/null <<'SQL' || fail "cannot start the workflows"
BEGIN;
SELECT durable.wf_start('greet', '{"name": "Ada"}', 'greet-1', 'greet');
SELECT durable.wf_start('greet', '{"name": "Grace"}', 'greet-2', 'greet');
SELECT durable.wf_start('greet', '{"name": "Edsger"}', 'greet-3', 'greet');
COMMIT;
SQL

for w in sh-1 sh-2; do
	WORKER=$w QUEUE=greet bash examples/sql_worker.sh >"$LOG/$w.log" 2>&1 &
	pids+=($!)
done

for spec in "greet-1:Ada" "greet-2:Grace" "greet-3:Edsger"; do
	id=${spec%%:*}; name=${spec#*:}
	res=$(q -c "SELECT durable.wf_result('$id', '30 s')") || fail "wf_result($id) raised an error"
	ok=$(q -c "SELECT '$res'::jsonb = jsonb_build_object('greeting', 'Hello, $name!',
	               'sent', jsonb_build_object('to', '$id', 'chars', length('Hello, $name!')))")
	[ "$ok" = t ] || fail "$id: unexpected result: $res"
	echo "ok: $id -> $res"
done

shape=$(q -c "SELECT string_agg(workflow_id || ':' || seq || ':' || kind || ':' || name || ':' || status, ' '
                                ORDER BY workflow_id, seq) FROM durable.journal")
want="greet-1:1:local:compose:completed greet-1:2:activity:send:completed greet-2:1:local:compose:completed greet-2:2:activity:send:completed greet-3:1:local:compose:completed greet-3:2:activity:send:completed"
[ "$shape" = "$want" ] || fail "journals: $shape"
echo "ok: each journal holds compose (local) and send (activity), completed"

st=$(q -c "SELECT string_agg(DISTINCT status, ',') FROM durable.workflows")
[ "$st" = completed ] || fail "statuses: $st"
left=$(q -c "SELECT count(*) FROM durable.task_list")
[ "$left" = 0 ] || fail "$left tasks left in the task table"
echo "ok: every run completed, no task left"
grep -h . "$LOG"/*.log
grep -q "task failed" "$LOG"/*.log && fail "a worker reported an error"
rm -rf "$LOG"
echo PASS
