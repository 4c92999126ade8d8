#!/usr/bin/env bash
# bench/vacuum_lag.sh: claims at a steady rate while an idle transaction
# holds back vacuum, durable beside the bare SKIP LOCKED queue in the
# same run (see bench/vacuum_lag.py).  PostgreSQL's default
# autovacuum_naptime (60 s).
#
#   bench/vacuum_lag.sh                      300 starts/s, holder 120 s (~7 min)
#   RATE=500 HOLD=60 bench/vacuum_lag.sh
# Other knobs: WORKERS (4), PRODUCERS (2), WAIT (listen: on an empty queue
# a durable worker waits for a NOTIFY, as durable's workers do; poll: it
# polls again after 2 ms, as the bare queue's workers always do), WARM (30),
# AFTER (30), KINDS (the runs: bare,durable,durable-nofloor), PORT (5510),
# BENCH_DIR (/tmp/durable-bench-vacuum), KEEP=1.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
PGBIN=${PGBIN:-$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)}
PORT=${PORT:-5510}
BENCH_DIR=${BENCH_DIR:-/tmp/durable-bench-vacuum}
KEEP=${KEEP:-0}

. "$HERE/lib.sh"

bench_python "vacuum lag" vacuum_lag.py --rate "${RATE:-300}" --workers "${WORKERS:-4}" \
	--producers "${PRODUCERS:-2}" --wait "${WAIT:-listen}" \
	--warm "${WARM:-30}" --hold "${HOLD:-120}" --after "${AFTER:-30}" \
	--kinds "${KINDS:-bare,durable,durable-nofloor}"
