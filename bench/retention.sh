#!/usr/bin/env bash
# bench/retention.sh: does the retention purge keep the tables flat under
# sustained load?
#
# Starts a throw-away cluster (durable preloaded, background worker on,
# default naptime), creates namespace 'bench' with retention '1 minute',
# runs bench/retention.py (pgbench pushing one-step workflows through that
# namespace for DURATION seconds while the sizes of durable.runs, tasks,
# steps and events are sampled every 30 s), prints the results and stops
# the cluster.
#
#   bench/retention.sh                   9 minutes of load, then 90 s drain
#   DURATION=120 DRAIN=60 bench/retention.sh
# Other knobs: CLIENTS (6), BATCH (25 workflows per pgbench transaction),
# EVERY (30, seconds between samples), RETENTION ('1 minute'), PORT (5508),
# BENCH_DIR (/tmp/durable-bench-retention), KEEP=1 (leave the cluster running).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
PGBIN=${PGBIN:-$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)}
PORT=${PORT:-5508}
BENCH_DIR=${BENCH_DIR:-/tmp/durable-bench-retention}
KEEP=${KEEP:-0}
DURATION=${DURATION:-540}
DRAIN=${DRAIN:-90}
CLIENTS=${CLIENTS:-6}
BATCH=${BATCH:-25}
EVERY=${EVERY:-30}
RETENTION=${RETENTION:-1 minute}

. "$HERE/lib.sh"

trap bench_cleanup EXIT
echo "durable retention bench: $(date -u '+%Y-%m-%d %H:%M:%SZ'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), cluster $DIR port $PORT" >&2
bench_cluster_start "synchronous_commit = on"
q postgres -c "CREATE DATABASE bench" >/dev/null
q bench -c "CREATE EXTENSION durable" >/dev/null
q bench -c "SELECT durable.namespace_create('bench', '$RETENTION')" >/dev/null

"$PY" "$HERE/retention.py" --dsn "host=$DIR port=$PORT user=postgres dbname=bench" \
	--pgbench "$PGBIN/pgbench" --pghost "$DIR" --pgport "$PORT" --workdir "$DIR" \
	--duration "$DURATION" --drain "$DRAIN" --clients "$CLIENTS" --batch "$BATCH" --every "$EVERY"

server_log_errors
