#!/usr/bin/env python3
"""bench/backlog.py: how long runs already started wait behind a backlog.

Run by bench/backlog.sh against a cluster with durable preloaded.

Each workflow has three tasks on one queue: its first workflow task
schedules an activity, the activity completes, the second workflow task
completes the run.  N runs are started at once (wf_start_many), then W
worker threads drive them with SQL only (task_poll max_tasks 1, then
task_suspend / task_complete), so the queue holds a backlog from the
first claim on.  Measured per run: start to close.

Two orders, in the same run and on the same server:
  in-flight-first  durable's claim order: within a priority, tasks of runs
                   in flight (the activities and second workflow tasks)
                   before the first tasks of new runs
  ready-time       the order before it (0.1 and the first 0.2 builds):
                   every ready task by ready time alone, reproduced by
                   clearing durable.tasks.new_run for the backlog, which
                   leaves one class ordered by ready time
Printed for each: the time until the first run closed and until 10% and
50% had closed, the median start-to-close time, and runs per second;
and the ratio of the in-flight-first figures to the ready-time ones.
"""
import argparse
import statistics
import sys
import threading
import time

import psycopg


def worker(dsn, queue, stop):
    conn = psycopg.connect(dsn, autocommit=True)
    conn.prepare_threshold = 0
    while not stop.is_set():
        row = conn.execute("SELECT token, kind, journal FROM durable.task_poll(%s, 'bl', 1)",
                           (queue,)).fetchone()
        if row is None:
            time.sleep(0.01)
            continue
        token, kind, journal = row
        if kind == "activity":
            conn.execute("SELECT durable.task_complete(%s, '{\"ok\": true}')", (token,))
        elif not journal:
            conn.execute("SELECT durable.task_suspend(%s, '[{\"seq\": 1, \"type\": \"activity\", "
                         "\"name\": \"act\", \"queue\": \"" + queue + "\"}]')", (token,))
        elif journal[0]["status"] == "completed":
            conn.execute("SELECT durable.task_complete(%s, '\"done\"')", (token,))
        else:
            conn.execute("SELECT durable.task_suspend(%s, '[]')", (token,))
    conn.close()


def scenario(dsn, queue, n, workers, ready_time_order):
    conn = psycopg.connect(dsn, autocommit=True)
    conn.execute("SELECT count(*) FROM durable.wf_start_many('bl', array_fill(NULL::jsonb, ARRAY[%s]), "
                 "NULL, %s)", (n, queue))
    if ready_time_order:
        conn.execute("UPDATE durable.tasks SET new_run = false WHERE queue = %s", (queue,))
    t0 = time.time()
    stop = threading.Event()
    threads = [threading.Thread(target=worker, args=(dsn, queue, stop)) for _ in range(workers)]
    for t in threads:
        t.start()
    while conn.execute("SELECT count(*) FROM durable.runs WHERE queue = %s AND status = 'running'",
                       (queue,)).fetchone()[0] > 0:
        time.sleep(0.1)
    stop.set()
    for t in threads:
        t.join()
    rows = conn.execute("SELECT extract(epoch FROM closed_at - created_at)::float8, extract(epoch FROM closed_at)::float8 "
                        "FROM durable.runs WHERE queue = %s ORDER BY closed_at", (queue,)).fetchall()
    conn.close()
    closes = [r[1] - t0 for r in rows]
    return {"first": closes[0], "p10": closes[len(closes) // 10], "p50": closes[len(closes) // 2],
            "latency": statistics.median(r[0] for r in rows), "rate": len(rows) / closes[-1]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    res = {"in-flight-first": [], "ready-time": []}
    for r in range(a.rounds):
        for name in ("ready-time", "in-flight-first"):
            got = scenario(a.dsn, "bl-%s-%d" % (name, r), a.n, a.workers, name == "ready-time")
            print("  round %d %-16s first close %6.2f s, 10%% closed %6.2f s, 50%% %6.2f s, "
                  "median start-to-close %6.2f s, %5.0f runs/s" % (
                      r + 1, name, got["first"], got["p10"], got["p50"], got["latency"], got["rate"]),
                  file=sys.stderr, flush=True)
            res[name].append(got)
    print("backlog of %d three-task runs, %d SQL workers, %d round(s) (medians of rounds):" % (
        a.n, a.workers, a.rounds))
    print("  %-34s %12s %16s %6s" % ("", "ready-time", "in-flight-first", "ratio"))
    for key, label in (("first", "first run closed after (s)"), ("p10", "10% of runs closed after (s)"),
                       ("p50", "50% of runs closed after (s)"), ("latency", "median start-to-close (s)"),
                       ("rate", "runs/s")):
        old = statistics.median(g[key] for g in res["ready-time"])
        new = statistics.median(g[key] for g in res["in-flight-first"])
        print("  %-34s %12.2f %16.2f %6.2f" % (label, old, new, new / old if old else float("nan")))


if __name__ == "__main__":
    sys.exit(main())
