#!/usr/bin/env python3
"""bench/timers.py: lateness of durable timers when many come due together.

Run by bench/timers.sh against a cluster with durable preloaded (background
worker on, default naptime) and track_commit_timestamp = on.

For each scenario, N workflows are started on their own queue and their
workflow tasks driven with SQL only: task_poll (max_tasks 100) claims them,
then each task is suspended with one command {"type": "sleep", "until": T}.
  spread:  the due times are spaced evenly over --spread seconds
  instant: every timer is due at the same instant
The due times start far enough ahead (measured by a calibration run) that
every timer is armed before it is due.  A worker thread LISTENs on the
queue's channel and claims the workflow tasks the timers wake (task_poll,
max_tasks 100, finishing the previous batch with done_tokens), so the runs
complete.

Per timer, against its due_at:
  resolved  durable.steps.resolved_at - due_at: the "now" of the
            background worker's round that fired it (its transaction start)
  ready     commit time of that round - due_at: when the next workflow task
            became claimable (pg_xact_commit_timestamp of the step row)
  claimed   when the worker thread held that workflow task - due_at: the
            end-to-end figure, including NOTIFY and the worker's own polling

Goal: every timer resolved and its workflow task claimable within 1 s of
its due time.
"""
import argparse
import datetime as dt
import select
import sys
import threading
import time

import psycopg
from psycopg.types.json import Jsonb

BATCH = 100
WAIT = 0.25  # an idle worker polls anyway after this long without a NOTIFY


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def pct(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    k = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def iso(ts):
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat()


def connect(dsn):
    conn = psycopg.connect(dsn, autocommit=True)
    conn.prepare_threshold = 0
    return conn


def wait_for_worker(conn, timeout=60):
    """The launcher picks up CREATE EXTENSION within its rescan (10 s)."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        n = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            " WHERE backend_type = 'durable worker' AND datname = current_database()").fetchone()[0]
        if n:
            return True
        time.sleep(0.2)
    return False


def start_workflows(conn, queue, prefix, n):
    for a in range(0, n, 1000):
        b = min(n, a + 1000)
        with conn.transaction():
            conn.execute(
                "SELECT count(durable.wf_start('timer', jsonb_build_object('i', i),"
                "       %s || i, %s)) FROM generate_series(%s::int, %s::int) i",
                (prefix, queue, a, b - 1))


def claim_all(conn, queue, n):
    tokens = []
    while len(tokens) < n:
        rows = conn.execute(
            "SELECT token FROM durable.task_poll(%s, 'arm', %s, '15 min')",
            (queue, BATCH)).fetchall()
        if not rows:
            raise RuntimeError("claimed %d of %d workflow tasks on %s" % (len(tokens), n, queue))
        tokens.extend(r[0] for r in rows)
    return tokens


def suspend_all(conn, tokens, due_of):
    """Suspend each claimed task with a sleep until due_of(k); one commit per
    batch of 100 (the calls are pipelined)."""
    sql = "SELECT durable.task_suspend(%s::bigint, %s::jsonb)"
    for a in range(0, len(tokens), BATCH):
        params = [(tok, Jsonb([{"seq": 1, "type": "sleep", "until": iso(due_of(a + j))}]))
                  for j, tok in enumerate(tokens[a:a + BATCH])]
        with conn.transaction():
            with conn.cursor() as cur:
                cur.executemany(sql, params)


def calibrate(dsn, n=500):
    """Arm n one-hour timers and cancel them: the arming rate (timers/s)."""
    conn = connect(dsn)
    queue = "calibrate"
    start_workflows(conn, queue, "cal-", n)
    t0 = time.time()
    tokens = claim_all(conn, queue, n)
    far = time.time() + 3600
    suspend_all(conn, tokens, lambda k: far)
    secs = time.time() - t0
    conn.execute("SELECT count(durable.wf_terminate('cal-' || i, 'calibration'))"
                 "  FROM generate_series(0, %s::int) i", (n - 1,))
    conn.close()
    return n / secs


class Claimer(threading.Thread):
    """A worker: LISTEN on the queue, claim woken workflow tasks 100 at a
    time and complete them with the next poll."""

    def __init__(self, dsn, queue, n, deadline):
        super().__init__(daemon=True)
        self.dsn, self.queue, self.n, self.deadline = dsn, queue, n, deadline
        self.claimed = {}   # workflow_id -> time the worker held the task
        self.bad = 0        # claimed tasks whose journal lacked the fired timer
        self.woken = {"notify": 0, "timeout": 0}  # waits that ended in a fruitful poll
        self.ready = threading.Event()
        self.error = None

    def run(self):
        try:
            self._run()
        except Exception as e:  # reported by the main thread
            self.error = e
            self.ready.set()

    def _run(self):
        conn = connect(self.dsn)
        # a NOTIFY that arrives while a poll runs is read with its result,
        # not left on the socket: the handler remembers it
        noted = []
        conn.add_notify_handler(lambda n: noted.append(1))
        conn.execute('LISTEN "durable_%s"' % self.queue)
        sock = conn.pgconn.socket
        held = []
        why = None          # what ended the last wait: notify or timeout
        self.ready.set()
        while len(self.claimed) < self.n and time.time() < self.deadline:
            if held:
                params = (held, [Jsonb({"ok": True})] * len(held))
            else:
                params = (None, None)
            rows = conn.execute(
                "SELECT token, workflow_id, journal FROM durable.task_poll("
                " %s, 'claimer', %s, '5 min', %s::bigint[], %s::jsonb[])",
                (self.queue, BATCH) + params).fetchall()
            t = time.time()
            held = []
            for tok, wid, journal in rows:
                held.append(tok)
                self.claimed.setdefault(wid, t)
                if not journal or journal[0].get("status") != "completed":
                    self.bad += 1
            if rows:
                if why:
                    self.woken[why] += 1
                why = None
                continue
            if noted:
                noted.clear()
                why = "notify"
                continue
            r, _, _ = select.select([sock], [], [], WAIT)
            why = "timeout"
            if r:
                conn.pgconn.consume_input()
                while conn.pgconn.notifies() is not None:
                    why = "notify"
                noted.clear()
        if held:
            conn.execute("SELECT durable.task_complete_many(%s::bigint[], %s::jsonb[])",
                         (held, [Jsonb({"ok": True})] * len(held)))
        conn.close()


def fmt_ms(vals):
    s = sorted(vals)
    if not s:
        return "%9s %9s %9s" % ("-", "-", "-")
    return "%9.1f %9.1f %9.1f" % (pct(s, 50), pct(s, 99), s[-1])


def scenario(dsn, name, n, spread, rate):
    queue = "timers_" + name
    prefix = name + "-"
    conn = connect(dsn)
    log("%s: starting %d workflows" % (name, n))
    start_workflows(conn, queue, prefix, n)
    # lead time: arming must end before the first timer is due
    arm_secs = n / rate
    lead = max(5.0, 1.5 * arm_secs + 3.0)
    gap = spread / n if spread > 0 else 0.0
    t_arm = time.time()
    base = t_arm + lead
    due = [base + k * gap for k in range(n)]
    tokens = claim_all(conn, queue, n)
    suspend_all(conn, tokens, lambda k: due[k])
    armed = time.time() - t_arm
    log("%s: armed %d timers in %.1f s (%.0f/s); due %s .. %s" % (
        name, n, armed, n / armed, iso(due[0])[11:23], iso(due[-1])[11:23]))

    claimer = Claimer(dsn, queue, n, due[-1] + 120)
    claimer.start()
    claimer.ready.wait(30)
    claimer.join(due[-1] + 130 - time.time())
    if claimer.error:
        raise claimer.error

    rows = conn.execute(
        "SELECT r.workflow_id, s.status, extract(epoch FROM s.scheduled_at)::float8,"
        "       extract(epoch FROM s.due_at)::float8,"
        "       extract(epoch FROM s.resolved_at)::float8,"
        "       extract(epoch FROM pg_xact_commit_timestamp(s.xmin))::float8,"
        "       s.xmin::text, r.status"
        "  FROM durable.steps s JOIN durable.runs r USING (run_id)"
        " WHERE r.queue = %s AND s.seq = 1 AND s.kind = 'sleep'", (queue,)).fetchall()
    conn.close()

    fired = [r for r in rows if r[1] == "completed"]
    armed_late = sum(1 for r in rows if r[2] > r[3])
    resolved = [(r[4] - r[3]) * 1000 for r in fired]
    ready = [(r[5] - r[3]) * 1000 for r in fired if r[5] is not None]
    claimed = [(claimer.claimed[r[0]] - r[3]) * 1000 for r in fired if r[0] in claimer.claimed]
    rounds = {}
    for r in fired:
        rounds[r[6]] = rounds.get(r[6], 0) + 1
    completed = sum(1 for r in rows if r[7] == "completed")
    within = lambda vals: sum(1 for v in vals if v <= 1000)

    title = ("%d timers spread over %g s" % (n, spread)) if spread > 0 else \
        ("%d timers due at the same instant" % n)
    out = []
    out.append("%s (armed in %.1f s, %.0f/s, first due %.1f s after arming began)"
               % (title, armed, n / armed, lead))
    out.append("  fired %d/%d, runs completed %d/%d, firing rounds %d (max %d timers in one round)%s"
               % (len(fired), n, completed, n, len(rounds), max(rounds.values()) if rounds else 0,
                  (", ARMED LATE %d" % armed_late) if armed_late else ""))
    out.append("  %-58s %9s %9s %9s %10s" % ("lateness vs due_at (ms)", "p50", "p99", "max", "<= 1 s"))
    out.append("  %-58s %s %10s" % ("resolved: steps.resolved_at (start of the firing round)",
                                   fmt_ms(resolved), "%d/%d" % (within(resolved), n)))
    out.append("  %-58s %s %10s" % ("ready: commit of the firing round (task claimable)",
                                   fmt_ms(ready), "%d/%d" % (within(ready), n)))
    out.append("  %-58s %s %10s" % ("claimed: a LISTENing worker held the workflow task",
                                   fmt_ms(claimed), "%d/%d" % (within(claimed), n)))
    out.append("  worker: %d idle waits ended by a NOTIFY, %d by its %d ms fallback timeout with work waiting"
               % (claimer.woken["notify"], claimer.woken["timeout"], WAIT * 1000))
    if claimer.bad:
        out.append("  !! %d woken workflow tasks did not show the timer as completed" % claimer.bad)
    ok = len(fired) == n and within(resolved) == n and within(ready) == n
    out.append("  goal (every timer resolved and its workflow ready within 1 s): %s"
               % ("met" if ok else "NOT MET"))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--spread", type=float, default=60.0)
    ap.add_argument("--scenarios", default="spread,instant")
    args = ap.parse_args()

    conn = connect(args.dsn)
    if not wait_for_worker(conn):
        log("the durable background worker did not start for this database")
        sys.exit(1)
    naptime = conn.execute("SHOW durable.naptime").fetchone()[0]
    batch = conn.execute("SHOW durable.batch_size").fetchone()[0]
    conn.close()

    rate = calibrate(args.dsn)
    log("calibration: %.0f timers armed per second" % rate)
    report = ["", "durable timers bench (naptime %s, batch_size %s, track_commit_timestamp on)"
              % (naptime, batch)]
    for name in args.scenarios.split(","):
        name = name.strip()
        if name == "spread":
            report.append("")
            report += scenario(args.dsn, "spread", args.n, args.spread, rate)
        elif name == "instant":
            report.append("")
            report += scenario(args.dsn, "instant", args.n, 0.0, rate)
        else:
            log("unknown scenario %r" % name)
            sys.exit(2)
    print("\n".join(report), flush=True)


if __name__ == "__main__":
    main()
