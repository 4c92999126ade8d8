#!/usr/bin/env bash
# bench/fairness.sh: does a small tenant wait behind a big tenant's
# backlog?  Tenant A enqueues a backlog at once, tenant B then enqueues one
# task every 100 ms while A's backlog drains; B's wait from ready to
# claimed, with fairness keys and (the baseline, same run) without.  Also
# the one-step throughput of a queue with fairness keys beside the same
# queue without them (see bench/fairness.py).
#
#   bench/fairness.sh                  20,000 tasks of A (~4 min)
#   BACKLOG=5000 bench/fairness.sh
# Other knobs: WORKERS (4), EVERY_MS (100), SECS (10: each throughput
# point per round), ROUNDS (3: the throughput points in turn), PORT (5511), BENCH_DIR (/tmp/durable-bench-fairness), KEEP=1.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
PGBIN=${PGBIN:-$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)}
PORT=${PORT:-5511}
BENCH_DIR=${BENCH_DIR:-/tmp/durable-bench-fairness}
KEEP=${KEEP:-0}

. "$HERE/lib.sh"

bench_python "fairness" fairness.py --backlog "${BACKLOG:-20000}" --workers "${WORKERS:-4}" \
	--every-ms "${EVERY_MS:-100}" --secs "${SECS:-10}" --rounds "${ROUNDS:-3}"
