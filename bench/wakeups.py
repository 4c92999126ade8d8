#!/usr/bin/env python3
"""bench/wakeups.py: how many workers one start wakes, with and without
targeted wake-ups.

Run by bench/wakeups.sh against a cluster with durable preloaded.

W worker threads wait on one queue, each on its own connection (LISTEN,
poll with task_poll max_tasks 1 when notified or every 2 s, complete what
it claimed at once).  A client starts N workflows one at a time, a random
10-40 ms apart, so the workers are idle when each start commits.  Two
modes, in the same run:
  queue channel  the workers LISTEN on the queue's channel only: each
                 NOTIFY wakes every one of them
  targeted       each worker also LISTENs on a channel of its own and
                 names it in durable.wake_channel: a start wakes one
Printed for each: polls per workflow (all of the workers' task_poll
calls over the workflows completed), empty polls per workflow, and the
dispatch latency (the start's commit to a worker holding the task), with
how many took over 100 ms: a missed wake-up waits for the 2 s poll.
"""
import argparse
import random
import select
import sys
import threading
import time

import psycopg


def worker(dsn, queue, idx, targeted, stop, stats, held):
    conn = psycopg.connect(dsn, autocommit=True)
    conn.prepare_threshold = 0
    conn.execute('LISTEN "durable_%s"' % queue)
    if targeted:
        channel = "wk_%s_%d" % (queue, idx)
        conn.execute('LISTEN "%s"' % channel)
        conn.execute("SELECT set_config('durable.wake_channel', %s, false)", (channel,))
    pg = conn.pgconn
    while not stop.is_set():
        rows = conn.execute("SELECT token, input FROM durable.task_poll(%s, %s, 1)",
                            (queue, "w%d" % idx)).fetchall()
        with stats["lock"]:
            stats["polls"] += 1
            stats["empty"] += 0 if rows else 1
        if rows:
            token, inp = rows[0]
            held[inp["i"]] = time.time()
            conn.execute("SELECT durable.task_complete(%s, NULL)", (token,))
            continue
        # wait for a notification (drain them all), or 2 s
        r, _, _ = select.select([conn.fileno()], [], [], 2.0)
        if r:
            pg.consume_input()
            while pg.notifies() is not None:
                pass
    conn.close()


def run_mode(dsn, queue, workers, n, targeted):
    stop = threading.Event()
    stats = {"polls": 0, "empty": 0, "lock": threading.Lock()}
    held = {}
    threads = [threading.Thread(target=worker, args=(dsn, queue, i, targeted, stop, stats, held))
               for i in range(workers)]
    for t in threads:
        t.start()
    time.sleep(1.0)                     # every worker has polled once and waits
    with stats["lock"]:
        stats["polls"] = stats["empty"] = 0
    client = psycopg.connect(dsn, autocommit=True)
    committed = {}
    for i in range(n):
        client.execute("SELECT durable.wf_start('w', %s::jsonb, NULL, %s)", ('{"i": %d}' % i, queue))
        committed[i] = time.time()
        time.sleep(random.uniform(0.010, 0.040))
    deadline = time.time() + 10
    while len(held) < n and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)                     # late wake-ups finish their polls
    stop.set()
    for t in threads:
        t.join()
    client.close()
    lat = sorted((held[i] - committed[i]) * 1000 for i in held)
    pct = lambda p: lat[min(len(lat) - 1, int(p / 100.0 * len(lat)))] if lat else float("nan")
    return {"done": len(held), "polls": stats["polls"] / max(1, len(held)),
            "empty": stats["empty"] / max(1, len(held)), "p50": pct(50), "p99": pct(99),
            "max": lat[-1] if lat else float("nan"), "late": sum(1 for x in lat if x > 100)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--n", type=int, default=200)
    a = ap.parse_args()
    res = {}
    for mode in ("queue channel", "targeted"):
        res[mode] = run_mode(a.dsn, "wk%s" % ("t" if mode == "targeted" else "q"), a.workers, a.n,
                             mode == "targeted")
        print("  %-13s %s" % (mode, res[mode]), file=sys.stderr, flush=True)
    print("%d idle workers, %d starts one at a time (10-40 ms apart):" % (a.workers, a.n))
    print("  %-14s %9s %9s %15s %8s %8s %8s %14s" % ("", "completed", "polls/wf", "empty polls/wf",
                                                      "p50 ms", "p99 ms", "max ms", "over 100 ms"))
    for mode, r in res.items():
        print("  %-14s %9d %9.2f %15.2f %8.2f %8.2f %8.2f %14d" % (
            mode, r["done"], r["polls"], r["empty"], r["p50"], r["p99"], r["max"], r["late"]))
    q, t = res["queue channel"], res["targeted"]
    print("  targeted / queue channel: polls per workflow %.2f, p50 %.2f, p99 %.2f" % (
        t["polls"] / q["polls"], t["p50"] / q["p50"], t["p99"] / q["p99"]))
    return 0 if q["done"] == a.n and t["done"] == a.n else 1


if __name__ == "__main__":
    sys.exit(main())
