#!/usr/bin/env python3
"""bench/sdk_bench_ts.py: end-to-end workflows/s through the TypeScript SDK,
next to the bare SQL worker protocol measured in the same run (sdk_bench.py
for the TypeScript SDK; target: at least 0.8x the SQL loop, as the Python SDK).

Needs a running server that preloads durable, node and the SDK's npm
packages (npm ci in clients/typescript); connects with the PG* environment
(as the postgres user, or a role with durable rights) and creates the
extension if it is missing:

    PGHOST=... PGPORT=... /usr/bin/python3 bench/sdk_bench_ts.py [-n 2000] [--processes 4]

Builds the SDK first (npm run build in clients/typescript, which compiles
test/bench_worker.ts) when dist/test/bench_worker.js is missing or older
than the sources.

For each workflow shape (1 local step, 5 local steps) and each driver:

  sdk   --processes node processes, each a durable-worker Worker
        (--concurrency tasks at once; test/bench_worker.ts) running a
        workflow that makes ctx.step() per step (step_record, 1 commit
        each), then returns (the result rides on the worker's next
        task_poll).
  sql   sdk_bench.py's SQL driver, imported: --processes Python processes,
        one connection each, a plain psycopg loop: task_poll(max 8), then
        per task step_record per step and task_complete.

Measured as sdk_bench.py does: the workers start first and wait; then -n
workflows are started in one transaction, and the throughput is
n / (last closed_at - start), from the database clock; commits per
workflow: xact_commit of the database over the point, over n.  Nothing is
cleaned up (each run uses its own queues and workflow ids).  Prints one
line per point and the SDK/SQL ratio.

--node-args passes options to the worker processes' node, e.g.
--node-args='--cpu-prof --cpu-prof-dir=/tmp/prof' (a profile per worker,
written when it exits).
"""

import argparse
import glob
import os
import shlex
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, ".."))
TS = os.path.join(REPO, "clients", "typescript")
WORKER_JS = os.path.join(TS, "dist", "test", "bench_worker.js")
sys.path.insert(0, HERE)

import psycopg  # noqa: E402

import sdk_bench  # noqa: E402  (its SQL driver and measurement)


def build():
    """npm run build when the compiled worker is missing or older than its sources."""
    if not os.path.isdir(os.path.join(TS, "node_modules")):
        sys.exit("%s/node_modules is missing: run npm ci there first" % TS)
    sources = (glob.glob(os.path.join(TS, "src", "*.ts")) + [os.path.join(TS, "test", "bench_worker.ts")]
               + [os.path.join(TS, f) for f in ("tsconfig.json", "package.json", "package-lock.json")])
    newest = max(os.path.getmtime(f) for f in sources if os.path.exists(f))
    if os.path.exists(WORKER_JS) and os.path.getmtime(WORKER_JS) >= newest:
        return
    r = subprocess.run(["npm", "run", "build", "--silent"], cwd=TS, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0 or not os.path.exists(WORKER_JS):
        print(r.stdout)
        sys.exit("npm run build failed in %s (exit %d)" % (TS, r.returncode))
    print("built the TypeScript SDK (npm run build)", flush=True)


def measure_ts(conn, steps, n, processes, concurrency, tag, node_args, prefetch=None, sql=False):
    """(workflows/s, seconds, commits per workflow) of one TypeScript point:
    sdk_bench.measure with node workers (test/bench_worker.ts); sql: its
    plain node-postgres loop instead of the SDK."""
    def command(queue, name):
        return (["node"] + node_args + [WORKER_JS, "--queue", queue, "--steps", str(steps),
                                        "--concurrency", str(concurrency), "--name", name]
                + ([] if prefetch is None else ["--prefetch", str(prefetch)])
                + (["--sql"] if sql else []))
    return sdk_bench.measure(conn, "sqlts" if sql else "sdk", steps, n, processes, concurrency, tag,
                             command, cwd=TS)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", "--workflows", type=int, default=2000, help="workflows per point")
    ap.add_argument("--processes", type=int, default=4)
    ap.add_argument("--concurrency", type=int, default=4, help="tasks at once per SDK worker process")
    ap.add_argument("--prefetch", type=int, default=None,
                    help="tasks claimed ahead per SDK worker process (default: the SDK's, concurrency)")
    ap.add_argument("--steps", default="1,5", help="workflow shapes: local steps per workflow")
    ap.add_argument("--rounds", type=int, default=3, help="rounds, each running every point once")
    ap.add_argument("--node-args", default="", help="options for the TypeScript workers' node")
    args = ap.parse_args()
    build()

    conn = psycopg.connect("", autocommit=True)
    conn.execute("CREATE EXTENSION IF NOT EXISTS durable")
    tag = "sdkbenchts%d" % os.getpid()
    print("sdk_bench_ts: %d workflows per point, %d worker processes (TypeScript SDK: %d tasks at once each; "
          "SQL: 1 connection each)" % (args.workflows, args.processes, args.concurrency))
    node_args = shlex.split(args.node_args)
    return sdk_bench.compare(
        conn, args, tag,
        lambda steps, rtag: measure_ts(conn, steps, args.workflows, args.processes, args.concurrency,
                                       rtag, node_args, args.prefetch),
        [("sqlts", lambda steps, rtag: measure_ts(conn, steps, args.workflows, args.processes, 1,
                                                  rtag, node_args, sql=True))])


if __name__ == "__main__":
    sys.exit(main())
