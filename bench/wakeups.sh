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

bench_python wake-ups wakeups.py --workers "${WORKERS:-8}" --n "${N:-200}"
