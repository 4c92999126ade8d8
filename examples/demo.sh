#!/usr/bin/env bash
# examples/demo.sh: the main job, from a fresh Debian 12 machine (as root,
# or a sudoer).  Installs what is missing, builds and installs durable,
# starts a local PostgreSQL 15 server with durable preloaded, runs the
# example workflow of examples/greet.py with real worker processes (the
# Python SDK in clients/python), prints its progress and result, and
# leaves the server running (it prints the export line that points the
# README's Getting started at it).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PORT=${DURABLE_DEMO_PORT:-5433}
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)

PKGS="build-essential postgresql-15 postgresql-server-dev-15 python3 python3-psycopg"
missing=$(for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$missing" ]; then
	echo "== installing: $missing"
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
export PATH=/usr/lib/postgresql/15/bin:$PATH

echo "== build and install"
make -s PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config >/dev/null
$SUDO make -s PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config install >/dev/null

export DURABLE_TMP=/tmp/durable-demo
. test/lib/cluster.sh
echo "== start PostgreSQL 15 on port $PORT with shared_preload_libraries = 'durable'"
cluster_stop server
cluster_start server "$PORT" "shared_preload_libraries = 'durable'" "durable.naptime = 200"
export PGHOST=$DURABLE_TMP/server PGPORT=$PORT PGUSER=postgres PGDATABASE=postgres
psql -qX -c "CREATE EXTENSION durable"

echo "== start two workers (queues default and mail)"
LOGS=$DURABLE_TMP/workers; mkdir -p "$LOGS"
export PYTHONPATH=$ROOT/clients/python:$ROOT
/usr/bin/python3 -m durable_worker --queue default examples.greet >"$LOGS/default.log" 2>&1 &
W1=$!
/usr/bin/python3 -m durable_worker --queue mail examples.greet >"$LOGS/mail.log" 2>&1 &
W2=$!
trap 'kill $W1 $W2 2>/dev/null || true' EXIT
sleep 1

echo "== start workflow greet('Ada')"
psql -qXAt -c "SELECT durable.wf_start('greet', '{\"name\": \"Ada\"}', workflow_id => 'greet-ada')"
for i in $(seq 1 100); do
	status=$(psql -qXAt -c "SELECT durable.wf_status('greet-ada')")
	[ "$status" != running ] && break
	sleep 0.1
done
echo "== history"
psql -qX -c "SELECT to_char(event_time, 'HH24:MI:SS.MS') AS time, event_type, seq, details
               FROM durable.wf_history('greet-ada')"
echo "== worker logs"
sed 's/^/   /' "$LOGS"/*.log
echo "== result ($status)"
psql -qXAt -c "SELECT jsonb_pretty(durable.wf_result('greet-ada'))"
echo
echo "The server keeps running.  Point psql and the workers of the README's"
echo "Getting started at it (from $ROOT) with:"
echo "    export PGHOST=$PGHOST PGPORT=$PORT PGUSER=postgres PGDATABASE=postgres"
echo "Stop it with:"
echo "    runuser -u postgres -- pg_ctl -D $DURABLE_TMP/server/data stop"
[ "$status" = completed ]
