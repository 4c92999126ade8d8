#!/usr/bin/env bash
# bench/timers.sh: how late durable timers fire when many are due at once.
#
# Starts a throw-away cluster (durable preloaded, background worker on,
# default naptime), runs bench/timers.py against it, prints the results and
# stops the cluster.  See bench/timers.py for what is measured.
#
#   bench/timers.sh                 10,000 timers spread over 60 s, then
#                                   10,000 due at the same instant
#   N=2000 bench/timers.sh          fewer timers
#   SCENARIOS=spread bench/timers.sh
# Other knobs: SPREAD (60, seconds), PORT (5507), BENCH_DIR
# (/tmp/durable-bench-timers), KEEP=1 (leave the cluster running).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
PGBIN=${PGBIN:-$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)}
PORT=${PORT:-5507}
BENCH_DIR=${BENCH_DIR:-/tmp/durable-bench-timers}
KEEP=${KEEP:-0}
N=${N:-10000}
SPREAD=${SPREAD:-60}
SCENARIOS=${SCENARIOS:-spread,instant}

. "$HERE/lib.sh"

trap bench_cleanup EXIT
echo "durable timers bench: $(date -u '+%Y-%m-%d %H:%M:%SZ'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), cluster $DIR port $PORT" >&2
# track_commit_timestamp: the commit time of the round that fired a
# timer is when its workflow task became claimable
bench_cluster_start "track_commit_timestamp = on" "synchronous_commit = on"
q postgres -c "CREATE DATABASE bench" >/dev/null
q bench -c "CREATE EXTENSION durable" >/dev/null

"$PY" "$HERE/timers.py" --dsn "host=$DIR port=$PORT user=postgres dbname=bench" \
	--n "$N" --spread "$SPREAD" --scenarios "$SCENARIOS"

server_log_errors
