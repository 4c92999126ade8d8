#!/usr/bin/env python3
"""bench/latency.py: dispatch latency, durable vs a bare LISTEN/NOTIFY queue.

One worker process LISTENs and, whenever it wakes up, polls until the queue
is empty.  The client (this process) starts work one item at a time with
some random spacing.  Latency of an item = time from the client's COMMIT
returning (the execute call returned in autocommit mode) to the worker
holding the item (its claim call returned the row).  Both processes read
CLOCK_MONOTONIC, which is system-wide, so their timestamps compare.

  --mode durable: client durable.wf_start(.., queue 'lat'); worker LISTEN
                  "durable_lat", durable.task_poll('lat', ..) and hands the
                  finished task back with the next poll (done_tokens).
  --mode bare:    client INSERT INTO jobs + pg_notify('bare_lat') in one
                  commit; worker LISTEN bare_lat, claims with
                  UPDATE .. FOR UPDATE SKIP LOCKED, then DELETE.

Prints one line (milliseconds; by_*: what made the worker poll when it got
the item: a notification, the previous poll having returned work, or the
wait timing out, which would mean a missed wake-up):
  RESULT mode=.. n=.. p50=.. p90=.. p99=.. max=.. lost=.. late=.. by_notify=.. by_busy=.. by_timeout=..
late counts samples over --late-ms.  --pairs-ms P starts items in pairs
instead (the second 0-12 ms after the first, a pair every P ms): a wake-up
the worker misses then shows as a late sample of about P ms.
--dump FILE appends the samples; --pool FILE.. summarizes several dumps.
"""
import argparse
import multiprocessing as mp
import random
import select
import sys
import time

import psycopg
from psycopg.types.json import Jsonb


def now_ns():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


DURABLE_POLL = (
    "SELECT token, (input->>'i')::int FROM durable.task_poll("
    " 'lat', 'lat-worker', 1, '30 s', %s::bigint[], %s::jsonb[])")
BARE_CLAIM = (
    "WITH c AS (UPDATE jobs SET state = 'claimed', worker = 'lat-worker', claimed_at = now()"
    "            WHERE id = (SELECT id FROM jobs WHERE state = 'ready'"
    "                         ORDER BY priority DESC, id LIMIT 1 FOR UPDATE SKIP LOCKED)"
    "           RETURNING id, payload)"
    " SELECT id, (payload->>'i')::int FROM c")


def worker(dsn, mode, timeout, ready, stop, out):
    conn = psycopg.connect(dsn, autocommit=True)
    conn.prepare_threshold = 0
    woken = {"flag": False}
    conn.add_notify_handler(lambda n: woken.__setitem__("flag", True))
    conn.execute('LISTEN "durable_lat"' if mode == "durable" else "LISTEN bare_lat")
    seen = {}
    held = None  # durable: token to hand back with the next poll

    def claim():
        """Claim one item; return its index or None."""
        nonlocal held
        if mode == "durable":
            params = ([held], [Jsonb({"ok": True})]) if held else (None, None)
            row = conn.execute(DURABLE_POLL, params).fetchone()
            t1 = now_ns()
            held = row[0] if row else None
            return (row[1], t1) if row else None
        row = conn.execute(BARE_CLAIM).fetchone()
        t1 = now_ns()
        if row is None:
            return None
        conn.execute("DELETE FROM jobs WHERE id = %s", (row[0],))
        return (row[1], t1)

    # drain anything left over, then tell the client we are waiting
    while claim():
        pass
    ready.set()
    pgconn = conn.pgconn
    why = "notify"  # what made us poll: notify, busy (last poll got one), timeout
    while True:
        got = claim()
        if got:
            i, t1 = got
            seen[i] = (t1, why)
            why = "busy"
            continue
        # empty: wait for a notification (or one that arrived during the poll)
        if woken["flag"]:
            woken["flag"] = False
            why = "notify"
            continue
        if stop.is_set():
            break
        r, _, _ = select.select([pgconn.socket], [], [], timeout)
        why = "timeout"
        if r:
            pgconn.consume_input()
            while pgconn.notifies() is not None:
                why = "notify"
    if held:
        conn.execute("SELECT durable.task_complete(%s::bigint, '{\"ok\": true}'::jsonb)", (held,))
    conn.close()
    out.put(seen)


def pct(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    k = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def summarize(mode, lat, lost, why, late_ms=100.0):
    lat = sorted(lat)
    return ("RESULT mode=%s n=%d p50=%.3f p90=%.3f p99=%.3f max=%.3f lost=%d late=%d "
            "by_notify=%d by_busy=%d by_timeout=%d" % (
                mode, len(lat), pct(lat, 50), pct(lat, 90), pct(lat, 99),
                lat[-1] if lat else float("nan"), lost, sum(1 for v in lat if v > late_ms),
                why.get("notify", 0), why.get("busy", 0), why.get("timeout", 0)))


def pool(mode, paths, late_ms):
    """Summarize the samples several runs appended to --dump files."""
    lat, lost, why = [], 0, {}
    for path in paths:
        with open(path) as f:
            for line in f:
                v, w = line.split()
                if v == "lost":
                    lost += 1
                else:
                    lat.append(float(v))
                    why[w] = why.get(w, 0) + 1
    print(summarize(mode, lat, lost, why, late_ms))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsn")
    ap.add_argument("--mode", choices=["durable", "bare"], required=True)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--gap-ms", type=float, default=25.0)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--wait-timeout", type=float, default=1.0,
                    help="seconds an idle worker waits for a notification before polling anyway")
    ap.add_argument("--pairs-ms", type=float, default=0,
                    help="start items in pairs (the second 0-12 ms after the first), "
                         "a pair every PAIRS_MS ms: a wake-up the worker misses shows "
                         "as a latency of about PAIRS_MS")
    ap.add_argument("--late-ms", type=float, default=100.0,
                    help="count samples slower than this as late")
    ap.add_argument("--dump", help="append each sample ('ms how') to this file")
    ap.add_argument("--pool", nargs="+", metavar="FILE",
                    help="only summarize samples dumped by earlier runs")
    args = ap.parse_args()
    if args.pool:
        pool(args.mode, args.pool, args.late_ms)
        return

    ctx = mp.get_context("fork")
    ready, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
    w = ctx.Process(target=worker, args=(args.dsn, args.mode, args.wait_timeout, ready, stop, out))
    w.start()
    if not ready.wait(30):
        print("worker did not start", file=sys.stderr)
        w.terminate()
        sys.exit(1)

    conn = psycopg.connect(args.dsn, autocommit=True)
    conn.prepare_threshold = 0
    if args.mode == "durable":
        sql = ("SELECT durable.wf_start('lat_wf', jsonb_build_object('i', %s::int),"
               " NULL, 'lat')")
    else:
        sql = ("WITH j AS (INSERT INTO jobs (payload) VALUES (jsonb_build_object('i', %s::int))"
               "           RETURNING id) SELECT pg_notify('bare_lat', '') FROM j")
    total = args.warmup + args.n
    t0 = {}
    for i in range(total):
        if args.pairs_ms and i % 2:
            # second of a pair: shortly after the first, while the worker
            # is busy with it (its next poll may be running)
            time.sleep(random.uniform(0, 0.012))
        elif args.pairs_ms:
            time.sleep(args.pairs_ms / 1000.0)
        else:
            time.sleep(args.gap_ms / 1000.0 * random.uniform(0.5, 1.5))
        conn.execute(sql, (i,))
        t0[i] = now_ns()
    conn.close()
    time.sleep(0.5)
    stop.set()
    seen = out.get(timeout=30)
    w.join(10)

    samples = [((seen[i][0] - t0[i]) / 1e6, seen[i][1]) if i in seen else (None, "lost")
               for i in range(args.warmup, total)]
    if args.dump:
        with open(args.dump, "a") as f:
            for v, how in samples:
                f.write("lost lost\n" if v is None else "%.4f %s\n" % (v, how))
    why = {}
    for v, how in samples:
        if v is not None:
            why[how] = why.get(how, 0) + 1
    print(summarize(args.mode, [v for v, _ in samples if v is not None],
                    sum(1 for v, _ in samples if v is None), why, args.late_ms))


if __name__ == "__main__":
    main()
