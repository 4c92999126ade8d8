#!/usr/bin/env python3
"""bench/fairness.py: fairness keys under a big tenant's backlog.

Run by bench/fairness.sh against a fresh cluster with durable preloaded.

Backlog scenario, run twice in the same cluster: tenant A starts --backlog
one-step workflows in one transaction (wf_start_many); then tenant B
starts one every --every-ms while --workers worker threads claim
(task_poll, max_tasks 1) and complete whatever they get, until A's backlog
is gone.  Once with fairness keys (A's runs "tenant-a", B's "tenant-b"),
once without any (the baseline).  B's wait is the time from its start's
COMMIT to the return of the task_poll that claimed it.

Throughput: --workers producer threads start one-step workflows and
--workers worker threads claim and complete them for --secs, on a queue
without keys (the baseline), with 1,000 fairness keys, with 1,000 keys
limited to 2 leased tasks each (queue_set_key_concurrency), and with
10,000 keys so limited; completions per second, their ratio to the
baseline, and the claim's p50 / p99.
"""
import argparse
import random
import statistics
import threading
import time

import psycopg
from psycopg.types.json import Jsonb


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def backlog_round(dsn, queue, backlog, workers, every_ms, keys):
    """B's waits (ms) and A's drain time (s)."""
    opts_a = {"fairness_key": "tenant-a"} if keys else {}
    opts_b = {"fairness_key": "tenant-b"} if keys else {}
    started = {}            # B's workflow id -> monotonic time its start committed
    claimed = {}            # B's workflow id -> monotonic time a poll returned it
    lock = threading.Lock()
    stop = threading.Event()

    with psycopg.connect(dsn, autocommit=True) as c:
        for i in range(0, backlog, 5000):
            n = min(5000, backlog - i)
            c.execute("SELECT count(*) FROM durable.wf_start_many('a', array_fill('{}'::jsonb, ARRAY[%s]), "
                      "NULL, %s, %s)", (n, queue, Jsonb(opts_a)))
        # the backlog counts from here: it became ready in those commits

    def worker(n):
        with psycopg.connect(dsn, autocommit=True) as c:
            while not stop.is_set():
                row = c.execute("SELECT token, workflow_id FROM durable.task_poll(%s, %s, 1)",
                                (queue, "w%d" % n)).fetchone()
                t = time.monotonic()
                if row is None:
                    time.sleep(0.002)
                    continue
                if row[1].startswith("b-"):
                    with lock:
                        claimed[row[1]] = t
                c.execute("SELECT durable.task_complete(%s, NULL)", (row[0],))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(workers)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    with psycopg.connect(dsn, autocommit=True) as c:
        k = 0
        while True:
            left = c.execute("SELECT count(*) FROM durable.tasks WHERE queue = %s AND state = 'ready'",
                             (queue,)).fetchone()[0]
            if left == 0 and k > 0:
                break
            wid = "b-%s-%d" % (queue, k)
            c.execute("SELECT durable.wf_start('b', NULL, %s, %s, %s)", (wid, queue, Jsonb(opts_b)))
            started[wid] = time.monotonic()
            k += 1
            time.sleep(every_ms / 1000.0)
    drained = time.monotonic() - t0
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join()
    waits = [(claimed[w] - started[w]) * 1000 for w in started if w in claimed]
    return waits, drained, len(started)


def throughput_round(dsn, queue, workers, secs, nkeys, key_limit=None):
    """completions per second, and the claim's p50 / p99 (ms) of polls that got a task"""
    stop = threading.Event()
    done = [0] * workers
    claims = [[] for _ in range(workers)]
    if key_limit is not None:
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("SELECT durable.queue_set_key_concurrency(%s, %s)", (queue, key_limit))

    def producer(n):
        rnd = random.Random(n)
        with psycopg.connect(dsn, autocommit=True) as c:
            while not stop.is_set():
                opts = {"fairness_key": "k%d" % rnd.randrange(nkeys)} if nkeys else {}
                c.execute("SELECT durable.wf_start('t', NULL, NULL, %s, %s)", (queue, Jsonb(opts)))

    def worker(n):
        with psycopg.connect(dsn, autocommit=True) as c:
            while not stop.is_set():
                t = time.monotonic()
                row = c.execute("SELECT token FROM durable.task_poll(%s, %s, 1)",
                                (queue, "w%d" % n)).fetchone()
                if row is None:
                    continue
                claims[n].append((time.monotonic() - t) * 1000)
                c.execute("SELECT durable.task_complete(%s, NULL)", (row[0],))
                done[n] += 1

    threads = [threading.Thread(target=producer, args=(n,)) for n in range(workers)]
    threads += [threading.Thread(target=worker, args=(n,)) for n in range(workers)]
    for t in threads:
        t.start()
    time.sleep(secs)
    stop.set()
    for t in threads:
        t.join()
    lat = [x for c in claims for x in c]
    return sum(done) / secs, pct(lat, 50), pct(lat, 99)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--backlog", type=int, default=20000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--every-ms", type=int, default=100)
    ap.add_argument("--secs", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()

    print("backlog: tenant A enqueues %d tasks at once; tenant B one every %d ms while A's drain; "
          "%d workers (task_poll max_tasks 1)" % (a.backlog, a.every_ms, a.workers))
    print("  %-22s %9s %9s %9s %9s %10s" % ("", "B tasks", "B p50 ms", "B p99 ms", "B max ms", "A drain s"))
    res = {}
    for keys, label, queue in ((False, "without keys (baseline)", "fair-nokeys"),
                               (True, "with fairness keys", "fair-keys")):
        waits, drained, n = backlog_round(a.dsn, queue, a.backlog, a.workers, a.every_ms, keys)
        res[keys] = waits
        print("  %-22s %9d %9.1f %9.1f %9.1f %10.1f" % (label, len(waits), pct(waits, 50), pct(waits, 99),
                                                    max(waits) if waits else float("nan"), drained))
    print("  goal: with keys, B's p99 wait under 50 ms")
    print()
    print("throughput: one-step workflows, %d producers and %d workers, %d s per round, %d rounds "
          "taking the points in turn (median shown); claim = the task_poll that got a task"
          % (a.workers, a.workers, a.secs, a.rounds))
    print("  %-34s %8s %6s %12s %12s %s" % ("", "done/s", "ratio", "claim p50 ms", "claim p99 ms",
                                           "ratio per round"))
    points = (("without keys (baseline)", "tp-nokeys", 0, None),
              ("1,000 fairness keys", "tp-keys", 1000, None),
              ("1,000 keys, at most 2 each leased", "tp-lim1k", 1000, 2),
              ("10,000 keys, at most 2 each leased", "tp-lim10k", 10000, 2))
    runs = {label: [] for label, _, _, _ in points}
    for r in range(a.rounds):
        for label, queue, nkeys, limit in points:
            runs[label].append(throughput_round(a.dsn, queue, a.workers, a.secs, nkeys, limit))
    base = [x[0] for x in runs[points[0][0]]]
    for label, _, _, _ in points:
        ratios = [x[0] / b for x, b in zip(runs[label], base)]
        print("  %-34s %8.0f %6.2f %12.2f %12.2f %s" % (
            label, statistics.median(x[0] for x in runs[label]), statistics.median(ratios),
            statistics.median(x[1] for x in runs[label]), statistics.median(x[2] for x in runs[label]),
            " ".join("%.2f" % q for q in ratios)))
    print("  goal: keys with per-key limits >= 0.8x the queue without them; claim p99 flat in the number of keys")

if __name__ == "__main__":
    main()
