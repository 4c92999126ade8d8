#!/usr/bin/env bash
# bench/wakeups.sh: polls per workflow and dispatch latency with 8 idle
# workers, waking the whole queue versus targeted wake-ups, in the same
# run (see bench/wakeups.py).
#
#   bench/wakeups.sh               8 workers, 200 starts per mode
#   WORKERS=16 N=400 bench/wakeups.sh
# Other knobs: PORT (5509), BENCH_DIR (/tmp/durable-bench-wakeups), KEEP=1.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
PGBIN=${PGBIN:-$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)}
PORT=${PORT:-5509}
BENCH_DIR=${BENCH_DIR:-/tmp/durable-bench-wakeups}
KEEP=${KEEP:-0}

. "$HERE/lib.sh"

trap bench_cleanup EXIT
echo "durable wake-ups bench: $(date -u '+%Y-%m-%d %H:%M:%SZ'), $(nproc) cores, cluster $DIR port $PORT" >&2
bench_cluster_start
q postgres -c "CREATE EXTENSION durable" >/dev/null
"$PY" "$HERE/wakeups.py" --dsn "host=$DIR port=$PORT user=postgres dbname=postgres" \
	--workers "${WORKERS:-8}" --n "${N:-200}"
