#!/usr/bin/env python3
"""test/e2e/test_chaos_ts.py: test_chaos.py on the TypeScript SDK.

200 money transfers of clients/typescript/test/chaos_worker.ts (the saga
of examples/typescript/src/saga.ts on tables ts_chaos_*: its SQL steps
are the SDK's exactly-once ctx.transaction) on four node worker processes
(node dist/test/chaos_worker.js, 2 s leases), ten of them killed with
SIGKILL while busy; the checks are test_chaos.py's.

Builds the SDK first (npm run build in clients/typescript, which compiles
test/ too) when dist/test/chaos_worker.js is missing or older than the
sources; the npm packages must be installed (npm ci: test/run does it).

Run as postgres with PG* pointing at a preloaded server (CHAOS_SEED=n to
repeat a run).
"""

import glob
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import test_chaos  # noqa: E402
from e2e_common import TestFailure  # noqa: E402

TS = os.path.join(test_chaos.REPO, "clients", "typescript")
WORKER_JS = os.path.join(TS, "dist", "test", "chaos_worker.js")


def build():
    """npm run build when the compiled worker is missing or older than its sources."""
    if not os.path.isdir(os.path.join(TS, "node_modules")):
        raise TestFailure("%s/node_modules is missing: run npm ci there first" % TS)
    sources = (glob.glob(os.path.join(TS, "src", "*.ts")) + [os.path.join(TS, "test", "chaos_worker.ts")]
               + [os.path.join(TS, f) for f in ("tsconfig.json", "package.json", "package-lock.json")])
    newest = max(os.path.getmtime(f) for f in sources if os.path.exists(f))
    if os.path.exists(WORKER_JS) and os.path.getmtime(WORKER_JS) >= newest:
        return
    t0 = time.monotonic()
    r = subprocess.run(["npm", "run", "build", "--silent"], cwd=TS, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0 or not os.path.exists(WORKER_JS):
        print(r.stdout)
        raise TestFailure("npm run build failed in %s (exit %d)" % (TS, r.returncode))
    print("built the TypeScript SDK (npm run build) in %.1f s" % (time.monotonic() - t0), flush=True)


class TypeScriptSaga:
    """chaos_worker.ts on the TypeScript SDK's Worker."""
    name = "test_chaos_ts"
    tag = "tschaos"
    tables = "ts_chaos"
    workflow = "ts_chaos_transfer"
    cwd = TS
    env = {"DURABLE_LOG": "info"}

    def setup(self, conn):
        build()
        r = subprocess.run(["node", WORKER_JS, "--setup"], cwd=TS, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            print(r.stdout)
            raise TestFailure("chaos_worker.js --setup failed (exit %d)" % r.returncode)

    def command(self, queue, name):
        return ["node", WORKER_JS, "--queue", queue, "--name", name, "--lease", test_chaos.LEASE,
                "--concurrency", "4", "--poll-interval", "1"]


if __name__ == "__main__":
    sys.exit(test_chaos.run(TypeScriptSaga()))
