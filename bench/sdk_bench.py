#!/usr/bin/env python3
"""bench/sdk_bench.py: end-to-end workflows/s through the Python SDK, next to
the bare SQL worker protocol measured in the same run.

Needs a running server that preloads durable; connects with the PG*
environment (as the postgres user, or a role with durable rights) and
creates the extension if it is missing:

    PGHOST=... PGPORT=... /usr/bin/python3 bench/sdk_bench.py [-n 2000] [--processes 4]

For each workflow shape (1 local step, 5 local steps) and each driver:

  sdk   --processes worker processes, each a durable_worker.Worker
        (--concurrency threads, each with its own connection) running
        @workflow code: ctx.step() per step (step_record, 1 commit each),
        then return (the result rides on the worker's next task_poll).
  sql   --processes processes, one connection each, a plain psycopg loop:
        task_poll(max 8), then per task step_record per step and
        task_complete: the same calls and commits as the SDK makes.

The workers start first and wait (LISTEN); then -n workflows are started
in one transaction, and the throughput is n / (last closed_at - start),
from the database clock.  Commits per workflow: xact_commit of the
database from the starts until the workers have exited, over n (it also
counts this script's progress checks, 20 a second, and the background
worker's rounds).  Nothing is cleaned up (each run uses its own
queues and workflow ids).  Prints one line per point and the SDK/SQL ratio.
"""

import argparse
import os
import select
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(REPO, "clients", "python"))

import psycopg  # noqa: E402
from psycopg.types.json import Jsonb  # noqa: E402


def make_workflow(steps):
    def bench_workflow(ctx, input):
        total = 0
        for i in range(steps):
            total += ctx.step("s%d" % i, lambda i=i: i)
        return {"steps": steps, "total": total}
    return bench_workflow


def sdk_worker(queue, steps, concurrency):
    import logging
    import durable_worker as dw
    logging.basicConfig(level=logging.WARNING)
    w = dw.Worker("", queue=queue, concurrency=concurrency, lease=30, poll_interval=1,
                  grace=5, workflows={"bench_%d" % steps: make_workflow(steps)}, activities={})
    print("ready", flush=True)
    w.run()


def sql_worker(queue, steps, name):
    conn = psycopg.connect("", autocommit=True)
    listen = psycopg.connect("", autocommit=True)
    listen.execute('LISTEN "durable_%s"' % queue)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("ready", flush=True)
    while True:
        tasks = conn.execute("SELECT token FROM durable.task_poll(%s, %s, 8, '30 s')",
                             (queue, name)).fetchall()
        for (token,) in tasks:
            total = 0
            for i in range(steps):
                conn.execute("SELECT durable.step_record(%s, %s, %s, %s)",
                             (token, i + 1, "s%d" % i, Jsonb(i)))
                total += i
            conn.execute("SELECT durable.task_complete(%s, %s)",
                         (token, Jsonb({"steps": steps, "total": total})))
        if not tasks:
            r, _, _ = select.select([listen.fileno()], [], [], 1.0)
            if r:
                listen.pgconn.consume_input()
                while listen.pgconn.notifies() is not None:
                    pass


def xact_commits(conn):
    conn.execute("SELECT pg_stat_clear_snapshot()")
    return conn.execute("SELECT xact_commit FROM pg_stat_database "
                        " WHERE datname = current_database()").fetchone()[0]


def start_and_wait(conn, wtype, queue, prefix, n):
    """Start n workflows (ids prefix1..n) in one transaction and wait until
    none of the queue's runs is open."""
    with conn.transaction():
        conn.execute("SELECT durable.wf_start(%s, jsonb_build_object('i', i), %s || i, %s) "
                     "  FROM generate_series(1, %s) i", (wtype, prefix, queue, n))
    deadline = time.monotonic() + 300
    while True:
        # a run of these workflows (local steps only) holds a task until
        # it closes: look at the small task table and count the runs
        # (a scan of every run the database holds) only once it is empty,
        # so that this check takes no CPU from the point it measures
        left = conn.execute("SELECT count(*) FROM durable.tasks WHERE queue = %s", (queue,)).fetchone()[0]
        if left == 0:
            left = conn.execute("SELECT count(*) FROM durable.runs WHERE queue = %s AND status = 'running'",
                                (queue,)).fetchone()[0]
        if left == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError("%d workflows still running after 300 s" % left)
        time.sleep(0.05)


def measure(conn, driver, steps, n, processes, concurrency, tag, command=None, cwd=None, warmup=200):
    """(workflows/s, seconds, commits per workflow) of one point, after
    warmup workflows that are not counted.  The workers are this script's
    (--sdk-worker / --sql-worker), or those that command(queue, name) starts
    (in cwd): processes that serve workflow type bench_<steps> on the queue
    and print "ready" once connected."""
    queue = "%s-%s%d" % (tag, driver, steps)
    wtype = "bench_%d" % steps
    if command is None:
        def command(queue, name):
            return [sys.executable, os.path.abspath(__file__), "--%s-worker" % driver, queue,
                    "--steps", str(steps), "--concurrency", str(concurrency), "--name", name]
    procs = []
    c0 = None
    try:
        for i in range(processes):
            procs.append(subprocess.Popen(command(queue, "%s-%d" % (queue, i)), stdout=subprocess.PIPE,
                                          text=True, cwd=cwd))
        for p in procs:                      # every worker imported and connected
            if p.stdout.readline().strip() != "ready":
                raise RuntimeError("a %s worker did not start" % driver)
        # warm-up: the same workflows, not counted, so that the point
        # measures the steady state (connections a pool opens on demand,
        # their backends' first plans, the JIT of the worker's language)
        # and not what a worker process pays once
        if warmup:
            start_and_wait(conn, wtype, queue, queue + "-w", warmup)
        time.sleep(0.5)
        c0 = xact_commits(conn)
        start_and_wait(conn, wtype, queue, queue + "-n", n)
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE status = 'completed'), "
            "       extract(epoch FROM max(closed_at) - min(created_at)) "
            "  FROM durable.runs WHERE queue = %s AND workflow_id LIKE %s", (queue, queue + "-n%")).fetchone()
        completed, secs = row[0], float(row[1])
        if completed != n:
            raise RuntimeError("%d of %d workflows completed" % (completed, n))
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    # the workers' backends flush their statistics as they exit
    time.sleep(1.0)
    return n / secs, secs, (xact_commits(conn) - c0) / n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", "--workflows", type=int, default=2000, help="workflows per point")
    ap.add_argument("--processes", type=int, default=4)
    ap.add_argument("--concurrency", type=int, default=4, help="threads per SDK worker process")
    ap.add_argument("--steps", default="1,5", help="workflow shapes: local steps per workflow")
    ap.add_argument("--rounds", type=int, default=3, help="rounds, each running every point once")
    ap.add_argument("--sdk-worker", metavar="QUEUE", help=argparse.SUPPRESS)
    ap.add_argument("--sql-worker", metavar="QUEUE", help=argparse.SUPPRESS)
    ap.add_argument("--name", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.sdk_worker:
        return sdk_worker(args.sdk_worker, int(args.steps), args.concurrency)
    if args.sql_worker:
        return sql_worker(args.sql_worker, int(args.steps), args.name)

    conn = psycopg.connect("", autocommit=True)
    conn.execute("CREATE EXTENSION IF NOT EXISTS durable")
    tag = "sdkbench%d" % os.getpid()
    print("sdk_bench: %d workflows per point, %d worker processes (SDK: %d threads each; SQL: 1 connection each)"
          % (args.workflows, args.processes, args.concurrency))
    return compare(conn, args, tag,
                   lambda steps, rtag: measure(conn, "sdk", steps, args.workflows, args.processes,
                                               args.concurrency, rtag))


def compare(conn, args, tag, measure_sdk, baselines=()):
    """Each shape (args.steps) through the bare SQL loop, any further
    baselines (name, measure(steps, tag)), then the SDK (measure_sdk(steps,
    tag) -> rate, secs, commits per workflow), interleaved: each of
    args.rounds rounds runs every driver once, so that a ratio compares
    points taken moments apart.  Prints each point, then per shape the
    median rate of each driver and the median of the SDK's per-round ratios
    to each baseline (with the lowest and highest)."""
    def measure_sql(steps, rtag):
        return measure(conn, "sql", steps, args.workflows, args.processes, args.concurrency, rtag)
    drivers = [("sql", measure_sql)] + list(baselines) + [("sdk", measure_sdk)]
    rates = {}
    for steps in [int(s) for s in args.steps.split(",")]:
        for r in range(args.rounds):
            for driver, run in drivers:
                rate, secs, cpw = run(steps, "%s-r%d" % (tag, r))
                rates.setdefault((driver, steps), []).append(rate)
                print("  round %d %-6s %d-step: %7.0f workflows/s  (%d in %.2f s)  %.2f commits/workflow"
                      % (r + 1, driver, steps, rate, args.workflows, secs, cpw), flush=True)
    print("RESULT (median of %d rounds; SDK/x: median of the per-round ratios, lowest-highest)" % args.rounds)
    for steps in sorted({s for _, s in rates}):
        sdk = rates[("sdk", steps)]
        cols = []
        for d, _ in drivers:
            if d == "sdk":
                continue
            ratios = [a / b for a, b in zip(sdk, rates[(d, steps)])]
            cols.append("%s %6.0f/s  SDK/%s = %.2f (%.2f-%.2f)" % (d, statistics.median(rates[(d, steps)]), d,
                                                                 statistics.median(ratios), min(ratios), max(ratios)))
        print("  %d-step workflows: SDK %6.0f/s  %s" % (steps, statistics.median(sdk), "  ".join(cols)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
