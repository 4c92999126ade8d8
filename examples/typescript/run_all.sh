#!/bin/bash
# Builds the SDK and the examples, starts the examples' worker process, runs
# each example's client (each checks its own result), and stops the worker
# with SIGTERM.  Exit status 0 when every example gave the expected result.
#
#   DURABLE_DSN='postgresql://postgres@/db?host=/tmp/sock&port=5432' examples/typescript/run_all.sh
#
# Without DURABLE_DSN the PG* environment variables name the database, which
# needs the durable extension (created if missing) and durable in
# shared_preload_libraries (timers).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
sdk="$here/../../clients/typescript"

(cd "$sdk" && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && npm run --silent build)
(cd "$here" && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && npm run --silent build)

cd "$here"
export EXAMPLES_QUEUE="${EXAMPLES_QUEUE:-ts_examples_$$}"
node --input-type=module -e '
  import { Client } from "durable-worker";
  import { connection } from "./dist/common.js";
  const c = new Client(connection);
  await c.pool.query("CREATE EXTENSION IF NOT EXISTS durable");
  await c.close();'

node dist/worker.js &
worker=$!
trap 'kill -TERM $worker 2>/dev/null || true' EXIT

# FANOUT_RUNS runs the fan-out that many times (the tests use 30: a run
# whose activities finish while its workflow task is claimed must close)
failed=0
runs=0
for example in hello saga approval $(printf 'fanout %.0s' $(seq "${FANOUT_RUNS:-1}")); do
    echo "== $example"
    runs=$((runs + 1))
    if ! timeout 180 node "dist/$example.js"; then
        failed=$((failed + 1))
    fi
done

kill -TERM $worker
wait $worker || { echo "the worker exited with status $?"; failed=$((failed + 1)); }
trap - EXIT
passed=$((runs - failed))
echo "examples: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
