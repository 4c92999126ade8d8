#!/usr/bin/env bash
# bench/backlog.sh: how long runs already started wait behind a backlog of
# new runs, with durable's claim order and with the ready-time order it
# replaced, in the same run (see bench/backlog.py).
#
#   bench/backlog.sh               2,000 runs, 8 workers, 2 rounds
#   N=5000 WORKERS=16 bench/backlog.sh
# Other knobs: ROUNDS (2), PORT (5508), BENCH_DIR (/tmp/durable-bench-backlog),
# KEEP=1 (leave the cluster running).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
PGBIN=${PGBIN:-$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)}
PORT=${PORT:-5508}
BENCH_DIR=${BENCH_DIR:-/tmp/durable-bench-backlog}
KEEP=${KEEP:-0}

. "$HERE/lib.sh"

bench_python backlog backlog.py --n "${N:-2000}" --workers "${WORKERS:-8}" --rounds "${ROUNDS:-2}"
