#!/usr/bin/env bash
# test/e2e/test_ui.sh: the web UI (ui/) against the cluster in PG*: the
# formatter of /metrics on fixed rows, then the browser test
# (ui/test/ui.test.js): Debian's chromium driven by playwright-core opens
# every page of a UI server connected to this cluster, with workflows run
# by a real worker process (the TypeScript SDK), runs every action and
# checks what the pages then show, live updates without a reload, a role
# without rights, auth, CSP and cross-site POSTs, and /metrics.  test/run
# installs chromium and the npm packages (npm ci in clients/typescript and
# ui) before it copies the tree.
set -euo pipefail
cd "$(dirname "$0")/../.."
psql -qAtX -v ON_ERROR_STOP=1 -c "CREATE EXTENSION IF NOT EXISTS durable"
command -v chromium >/dev/null || { echo "FAILED: no chromium (apt-get install chromium)"; exit 1; }
# the worker of the test is the TypeScript SDK, built from this tree
(cd clients/typescript && npm run --silent build)
cd ui
echo "== /metrics formatter"
npm test --silent
echo "== browser"
node --test test/ui.test.js
