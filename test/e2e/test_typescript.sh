#!/usr/bin/env bash
# test/e2e/test_typescript.sh: the TypeScript SDK (clients/typescript)
# against the cluster in PG*: its replay unit tests, its integration tests
# (real Worker and Client on this server: activities with retries, timers,
# signals, children, continue-as-new, cancellation, nondeterminism,
# queries, updates, 64-bit ids), then the TypeScript examples
# (examples/typescript: hello, saga, approval, fan-out of 100 (30 times)), each run by
# a real worker process to its checked result.  test/run installs the npm
# packages (npm ci, from the committed lockfiles) before it copies the tree.
set -euo pipefail
cd "$(dirname "$0")/../.."
psql -qAtX -v ON_ERROR_STOP=1 -c "CREATE EXTENSION IF NOT EXISTS durable"
dsn="postgresql://${PGUSER}@/${PGDATABASE}?host=${PGHOST}&port=${PGPORT}"
echo "== SDK tests"
(cd clients/typescript && DURABLE_TEST_DSN="$dsn" npm test --silent)
echo "== examples"
# the fan-out 30 times: before 0.2 one run in about 40 stayed running when
# its activities finished while its workflow task was being claimed
DURABLE_DSN="$dsn" FANOUT_RUNS=30 bash examples/typescript/run_all.sh
