#!/usr/bin/env python3
"""bench/vacuum_lag.py: does the claim hold up while dead tuples pile up?

Run by bench/vacuum_lag.sh against a fresh cluster with durable preloaded
and PostgreSQL's default autovacuum_naptime (60 s).

A producer starts one-step workflows at a steady rate; W worker processes
claim (task_poll, max_tasks 1) and complete them.  After a warm-up, a
third connection opens a transaction that holds an xid and stays idle
(pg_dump, an analytics query, a stuck client): while it lasts nothing
that was deleted or updated after it began can be vacuumed away, so the
claim index fills with entries of claimed tasks.  Then it ends, and the
run goes on to see whether the backlog drains.

The same phases run twice, in the same cluster: against durable, and
against the bare SKIP LOCKED queue of bench/sql/setup.sql (INSERT, claim
UPDATE, DELETE), the baseline.  Printed per window of --window seconds:
started, completed, ready backlog at the window's end, claim p50 and p99
(ms, the claim statement's own time, polls that got a task), dead tuples
of the queue table; and a summary per phase.
"""
import argparse
import multiprocessing as mp
import os
import queue
import select
import time

import psycopg

BARE_SETUP = """
CREATE TABLE IF NOT EXISTS jobs (
    id bigserial PRIMARY KEY, payload jsonb NOT NULL, priority int NOT NULL DEFAULT 0,
    state text NOT NULL DEFAULT 'ready', worker text, claimed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now());
ALTER TABLE jobs SET (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_cost_delay = 0);
CREATE INDEX IF NOT EXISTS jobs_claim ON jobs (priority DESC, id) WHERE state = 'ready';
"""

KINDS = {
    "durable": {
        "start": "SELECT durable.wf_start('lag', '{\"n\": 1}'::jsonb, NULL, 'lag')",
        "claim": "SELECT token FROM durable.task_poll('lag', 'w', 1)",
        "done": "SELECT durable.task_complete(%s, '{\"ok\": true}'::jsonb)",
        "ready": "SELECT count(*) FROM durable.tasks WHERE queue = 'lag' AND state = 'ready'",
        "table": "tasks",
    },
    "bare": {
        "start": "INSERT INTO jobs (payload) VALUES ('{\"n\": 1}')",
        "claim": ("UPDATE jobs SET state = 'claimed', worker = 'w', claimed_at = now() "
                  " WHERE id = (SELECT id FROM jobs WHERE state = 'ready' "
                  "              ORDER BY priority DESC, id LIMIT 1 FOR UPDATE SKIP LOCKED) "
                  "RETURNING id"),
        "done": "DELETE FROM jobs WHERE id = %s",
        "ready": "SELECT count(*) FROM jobs WHERE state = 'ready'",
        "table": "jobs",
    },
}


class Stats:
    """What the producer and worker processes report, gathered in the
    parent: starts and completions (shared counters) and each claim's time
    and duration (sent in batches over a queue)."""

    def __init__(self):
        self.started = mp.Value("q", 0)
        self.completed = mp.Value("q", 0)
        self.queue = mp.Queue()
        self.claims = []                        # (time, ms)

    def snapshot(self):
        while True:
            try:
                self.claims += self.queue.get_nowait()
            except queue.Empty:
                break
        return self.started.value, self.completed.value, self.claims


# Producers and workers are processes, not threads: in one Python process
# they shared one interpreter lock, and a 10-minute run at 650/s measured
# the client (its producer slowed from 448/s to 190/s) as much as the
# server.  time.monotonic() is one clock for all processes on Linux.
def producer(dsn, kind, rate, stop, stats):
    conn = psycopg.connect(dsn, autocommit=True)
    sql = KINDS[kind.replace("-nofloor", "")]["start"]
    t0 = time.monotonic()
    n = 0
    while not stop.is_set():
        due = t0 + n / rate
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        conn.execute(sql)
        n += 1
        with stats.started.get_lock():
            stats.started.value += 1
    conn.close()


def worker(dsn, kind, listen, stop, stats):
    """Claim and complete until stopped.  On an empty queue a durable
    worker with listen waits for a wake-up as durable's workers do (LISTEN
    on the queue's channel and on a channel of its own named in
    durable.wake_channel, 0.5 s at most); otherwise it polls again after
    2 ms (the bare queue sends no notifications)."""
    conn = psycopg.connect(dsn, autocommit=True)
    k = KINDS[kind.replace("-nofloor", "")]
    woke = [False]
    if listen:
        channel = "durable_w_%s" % os.urandom(8).hex()
        conn.execute("SELECT set_config('durable.wake_channel', %s, false)", (channel,))
        conn.execute('LISTEN "durable_lag"')
        conn.execute('LISTEN "%s"' % channel)
        # a notification read with a statement's result comes through here
        conn.add_notify_handler(lambda n: woke.__setitem__(0, True))
    batch = []
    sent = time.monotonic()
    while not stop.is_set():
        t = time.monotonic()
        row = conn.execute(k["claim"]).fetchone()
        ms = (time.monotonic() - t) * 1000
        if row is not None:
            conn.execute(k["done"], (row[0],))
            batch.append((time.monotonic(), ms))
            with stats.completed.get_lock():
                stats.completed.value += 1
        elif not listen:
            time.sleep(0.002)                   # an empty queue: poll again soon
        elif not woke[0]:
            r, _, _ = select.select([conn.fileno()], [], [], 0.5)
            if r:
                conn.pgconn.consume_input()
                while conn.pgconn.notifies() is not None:
                    pass
        woke[0] = False
        if batch and time.monotonic() - sent >= 0.2:
            stats.queue.put(batch)
            batch = []
            sent = time.monotonic()
    if batch:
        stats.queue.put(batch)
    conn.close()


def pct(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def run(dsn, kind, args):
    admin = psycopg.connect(dsn, autocommit=True)
    if kind == "durable-nofloor":
        # the same calls, each claim walking tasks_claim from its start
        dsn = dsn + " options='-c durable.claim_floors=off'"
    k = KINDS["durable" if kind == "durable-nofloor" else kind]
    stats = Stats()
    stop = mp.Event()
    # each producer starts its share of the rate
    threads = [mp.Process(target=producer, args=(dsn, kind, args.rate / args.producers, stop, stats))
               for _ in range(args.producers)]
    listen = kind != "bare" and args.wait == "listen"
    threads += [mp.Process(target=worker, args=(dsn, kind, listen, stop, stats))
                for _ in range(args.workers)]
    for t in threads:
        t.start()
    phases = [("warm-up", args.warm), ("holder", args.hold), ("after", args.after)]
    holder = None
    print("%s: %d/s from %d producers, %d workers (%s); window %ss" % (
        kind, args.rate, args.producers, args.workers,
        "wait for NOTIFY" if listen else "poll every 2 ms when empty", args.window))
    print("  %-8s %6s %8s %8s %7s %9s %9s %10s" % ("phase", "t(s)", "started", "done", "ready",
                                                 "claim p50", "claim p99", "dead tup"))
    summary = []
    t_start = time.monotonic()
    for name, secs in phases:
        if name == "holder":
            holder = psycopg.connect(dsn)
            holder.execute("SELECT txid_current()")   # holds an xid, then idles
        phase_claims = []
        phase_t0 = time.monotonic()
        s0, c0, _ = stats.snapshot()
        while time.monotonic() - phase_t0 < secs:
            w0 = time.monotonic()
            ws, wc, _ = stats.snapshot()
            time.sleep(min(args.window, secs - (w0 - phase_t0)))
            s1, c1, claims = stats.snapshot()
            window = [ms for (t, ms) in claims if t >= w0]
            phase_claims += window
            ready = admin.execute(k["ready"]).fetchone()[0]
            dead = admin.execute("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = %s",
                                 (k["table"],)).fetchone()[0]
            print("  %-8s %6.0f %8d %8d %7d %9.2f %9.2f %10d" % (
                name, time.monotonic() - t_start, s1 - ws, c1 - wc, ready,
                pct(window, 0.5), pct(window, 0.99), dead))
        s1, c1, _ = stats.snapshot()
        dur = time.monotonic() - phase_t0
        summary.append((name, (s1 - s0) / dur, (c1 - c0) / dur, pct(phase_claims, 0.5),
                        pct(phase_claims, 0.99)))
        if name == "holder":
            holder.rollback()
            holder.close()
    stop.set()
    for t in threads:
        stats.snapshot()                        # a full queue would block a worker's exit
        t.join()
    admin.close()
    return summary


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--rate", type=int, default=300, help="starts per second")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--wait", choices=["listen", "poll"], default="listen",
                    help="what a durable worker does on an empty queue: wait for a NOTIFY "
                         "(as durable's workers do) or poll again after 2 ms")
    ap.add_argument("--producers", type=int, default=2,
                    help="processes that start workflows, each at rate / producers")
    ap.add_argument("--warm", type=float, default=30)
    ap.add_argument("--hold", type=float, default=120, help="seconds the idle transaction holds its xid")
    ap.add_argument("--after", type=float, default=30)
    ap.add_argument("--window", type=float, default=10)
    ap.add_argument("--kinds", default="bare,durable,durable-nofloor",
                    help="which runs, in order (bare is the baseline the summary needs)")
    args = ap.parse_args()
    with psycopg.connect(args.dsn, autocommit=True) as c:
        c.execute(BARE_SETUP)
        naptime = c.execute("SHOW autovacuum_naptime").fetchone()[0]
    print("vacuum lag: autovacuum_naptime %s, rate %d/s, holder %ss" % (naptime, args.rate, args.hold))
    kinds = args.kinds.split(",")
    results = {kind: run(args.dsn, kind, args) for kind in kinds}
    if "bare" not in results:
        return
    print()
    print("per phase: completed/s, claim p50 / p99 ms (bare queue = baseline, same run;")
    print("durable-nofloor: durable with durable.claim_floors = off, claims walk tasks_claim from its start)")
    for i, (name, *_rest) in enumerate(results["bare"]):
        print("  %-8s" % name + "".join("   %s %5.0f/s %6.2f / %7.2f ms" % (
            kind, results[kind][i][2], results[kind][i][3], results[kind][i][4]) for kind in kinds))


if __name__ == "__main__":
    main()
