#!/usr/bin/env python3
"""test/e2e/test_reconnect.py: SDK workers outlive lost connections.

Real worker processes (python3 -m durable_worker) run a small workload
(a local step, then an activity) written to the test's temporary directory.

1. restart: 100 workflows (1.5 s activities) run on two workers with 60 s
   leases, so every task they hold is still theirs after the outage; a
   third worker serves a queue with nothing to do.  Once a quarter of the
   activities have completed, the test stops the server (pg_ctl -m fast), starts a fourth
   worker while it is down, keeps it down for 20 s and starts it again.
   One more workflow's activity runs 12 s on a worker with a 3 s lease:
   it finishes during the outage, its lease expires meanwhile, so its late
   result is refused (DU004) and must be dropped with a log line and the
   activity run again.  Checks: every worker process stays up and is still
   running afterwards (the same PIDs); each logged the loss (WARNING) and
   the reconnect, the fourth that it could not connect and then did; every
   workflow completes, once, with the right output; results finished while
   the server was down were handed in after the restart, and no lease of
   the 60 s workers had to expire.

2. terminate: a feeder starts 5 workflows a second on two workers (4
   slots each) while the test calls pg_terminate_backend on every
   connection of the workers (selected by application_name) every 300 ms
   for 10 s.  Checks: the workers are still running, every workflow
   completes, and the largest gap between consecutive completions
   (closed_at, not counting the wait for the first) stays under 3 s: a
   worker polls at once after each reconnect instead of waiting for a
   NOTIFY that may never come (its fallback poll comes only every 5 s;
   3 s, not less, so that a busy machine's scheduling delays do not fail
   the test: one CI run saw 1.18 s with every process healthy).

Run as postgres with PG* pointing at a preloaded server whose data
directory the test may stop and start (test/run's e2e cluster).  The
workers import durable_worker from $PYTHONPATH first if it is set, else
from clients/python.  RECONNECT_ONLY=restart or terminate runs one part.
"""

import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)

import psycopg  # noqa: E402
from e2e_common import TestFailure, check, wait_for  # noqa: E402
from psycopg.types.json import Jsonb  # noqa: E402

TAG = "recon%d" % os.getpid()
OUTAGE = 20.0               # seconds the server stays down
N_RESTART = 100             # workflows running across the restart
KILL_EVERY = 0.3            # seconds between pg_terminate_backend rounds
KILL_FOR = 10.0             # seconds of killing
FEED_RATE = 5               # workflows started per second during part 2
MAX_GAP = 3.0               # seconds without a completion allowed in part 2 (fallback poll: 5 s)

WORKLOAD = '''
import time
import durable_worker as dw


@dw.activity()
def recon_work(ctx, inp):
    # "slow_first": only the first attempt is slow (the stale-result case)
    if ctx.attempt == 1 or not inp.get("slow_first"):
        time.sleep(inp.get("work", 0))
    return {"n": inp["n"], "attempt": ctx.attempt}


@dw.workflow()
def recon_flow(ctx, inp):
    double = ctx.step("prepare", lambda: inp["n"] * 2)
    r = ctx.activity("recon_work", inp, queue=inp.get("aq"))
    return {"n": inp["n"], "double": double, "attempt": r["attempt"]}
'''


def pg_bin(prog):
    for d in (os.environ.get("PGBIN"), "/usr/lib/postgresql/15/bin"):
        if d and os.path.exists(os.path.join(d, prog)):
            return os.path.join(d, prog)
    return shutil.which(prog) or prog


class Server:
    """Stop and start the test's cluster (pg_ctl, as its owner)."""

    def __init__(self, conn):
        self.data = conn.execute("SHOW data_directory").fetchone()[0]
        self.log = os.path.join(os.path.dirname(self.data), "log")
        self.down = False

    def stop(self):
        subprocess.run([pg_bin("pg_ctl"), "-D", self.data, "-m", "fast", "-w", "stop"],
                       check=True, stdout=subprocess.DEVNULL)
        self.down = True

    def start(self):
        subprocess.run([pg_bin("pg_ctl"), "-D", self.data, "-l", self.log, "-w", "start"],
                       check=True, stdout=subprocess.DEVNULL)
        self.down = False


def connect():
    return psycopg.connect("", autocommit=True, application_name="e2e-test")


class Pool:
    """Worker processes (python3 -m durable_worker recon_wl); kept for their logs."""

    def __init__(self):
        parent = os.environ.get("DURABLE_TMP")
        if not parent or not os.access(parent, os.W_OK):
            parent = None
        self.dir = tempfile.mkdtemp(prefix="durable-reconnect-", dir=parent)
        with open(os.path.join(self.dir, "recon_wl.py"), "w") as f:
            f.write(WORKLOAD)
        path = [os.path.join(REPO, "clients", "python"), self.dir]
        if os.environ.get("PYTHONPATH"):
            path.insert(0, os.environ["PYTHONPATH"])
        self.env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
        self.procs = []

    def sdk(self):
        return subprocess.run([sys.executable, "-c", "import durable_worker; print(durable_worker.__file__)"],
                              env=self.env, stdout=subprocess.PIPE, text=True, check=True).stdout.strip()

    def start(self, name, queue, *args, appname):
        log = open(os.path.join(self.dir, name + ".log"), "w")
        env = dict(self.env, PGAPPNAME=appname)
        p = subprocess.Popen([sys.executable, "-m", "durable_worker", "--queue", queue, "--name", name,
                              *args, "recon_wl"],
                             stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.dir)
        p.name, p.logfile = name, log.name
        log.close()
        self.procs.append(p)
        return p

    def log(self, p):
        with open(p.logfile) as f:
            return f.read()

    def stop(self, procs=None):
        procs = self.procs if procs is None else procs
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def dump(self):
        for p in self.procs:
            print("----- %s (pid %d, rc %s) -----\n%s" % (p.name, p.pid, p.poll(), self.log(p)[-6000:]))


def alive(procs):
    return {p.name: p.poll() is None for p in procs}


def test_restart(conn, pool, server):
    q, short_q = TAG + "-restart", TAG + "-short"
    app = TAG + "-restart-worker"
    common = ["--concurrency", "8", "--poll-interval", "5"]
    workers = [pool.start("%s-w%d" % (q, i), q, "--lease", "60", *common, appname=app) for i in range(2)]
    short = pool.start(q + "-short", short_q, "--lease", "3", "--concurrency", "1", appname=app)
    # a worker of a queue with nothing to do (and no result to hand in): it learns of the
    # outage from its LISTEN connection or its next poll
    idle = pool.start(q + "-idle", q + "-idle", "--lease", "60", *common, appname=app)
    pids = {p.name: p.pid for p in workers + [short, idle]}
    print("workers %s" % pids, flush=True)

    # the stale-result case first: an activity that outlives its 3 s lease during the outage
    stale = q + "-stale"
    conn.execute("SELECT durable.wf_start('recon_flow', %s, %s, %s)",
                 (Jsonb({"n": -1, "work": 12, "slow_first": True, "aq": short_q}), stale, q))
    wait_for("the stale-case activity to run", lambda: conn.execute(
        "SELECT count(*) FROM durable.task_list WHERE queue = %s AND state = 'leased'",
        (short_q,)).fetchone()[0] == 1, timeout=10)
    ids = ["%s-%03d" % (q, i) for i in range(N_RESTART)]
    with conn.transaction():
        for i, wid in enumerate(ids):
            conn.execute("SELECT durable.wf_start('recon_flow', %s, %s, %s)",
                         (Jsonb({"n": i, "work": 1.5}), wid, q))

    def completed():
        return conn.execute("SELECT count(*) FROM durable.workflows WHERE queue = %s AND status = 'completed'",
                            (q,)).fetchone()[0]

    def activities_done():
        return conn.execute("SELECT count(*) FROM durable.journal WHERE workflow_id = ANY(%s) "
                            "   AND kind = 'activity' AND status = 'completed'", (ids,)).fetchone()[0]
    wait_for("a quarter of the activities to complete", lambda: activities_done() >= N_RESTART // 4, timeout=30)
    held = dict(conn.execute("SELECT kind, count(*) FROM durable.task_list WHERE queue IN (%s, %s) "
                             "   AND state = 'leased' GROUP BY 1", (q, short_q)).fetchall())
    print("stopping the server: %d of %d activities and %d of %d workflows completed, tasks held by workers: %s"
          % (activities_done(), N_RESTART, completed(), N_RESTART + 1, held), flush=True)
    conn.close()
    server.stop()
    down_at = time.monotonic()

    time.sleep(2)
    late = pool.start(q + "-late", q, "--lease", "60", *common, appname=app)
    pids[late.name] = late.pid
    print("started worker %s (pid %d) while the server is down" % (late.name, late.pid), flush=True)
    time.sleep(max(0.0, OUTAGE - (time.monotonic() - down_at)))
    everyone = workers + [short, idle, late]
    up_during = alive(everyone)
    print("after %.1f s down, worker processes running: %s" % (time.monotonic() - down_at, up_during), flush=True)
    server.start()
    up_at = time.monotonic()
    print("server started again after %.1f s down" % (up_at - down_at), flush=True)

    conn = connect()
    deadline = time.monotonic() + 40
    while conn.execute("SELECT count(*) FROM durable.workflows WHERE queue = %s AND status = 'running'",
                       (q,)).fetchone()[0]:
        if time.monotonic() > deadline or not any(alive(everyone).values()):
            break
        time.sleep(0.1)
    left = conn.execute("SELECT count(*) FROM durable.workflows WHERE queue = %s AND status = 'running'",
                        (q,)).fetchone()[0]
    print("%d workflows still running %.1f s after the restart" % (left, time.monotonic() - up_at), flush=True)
    # a worker with nothing to hand in reconnects at its next attempt (backoff capped at 5 s)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not all(
            p.poll() is not None or "connected to the server after" in pool.log(p) for p in everyone):
        time.sleep(0.1)
    running = alive(everyone)
    print("worker processes running after the restart: %s (pids %s)" % (running, pids), flush=True)

    check(all(up_during.values()), "every worker process stayed up while the server was down")
    check(all(running.values()), "every worker process is still running after the restart, same PIDs")
    runs = collections.defaultdict(list)
    for wid, status, output in conn.execute(
            "SELECT workflow_id, status, output FROM durable.workflows WHERE queue = %s", (q,)):
        runs[wid].append((status, output))
    check(sorted(runs) == sorted(ids + [stale]) and all(len(r) == 1 for r in runs.values()),
          "every workflow has exactly one run (%d)" % len(runs))
    statuses = collections.Counter(r[0][0] for r in runs.values())
    print("run statuses: %s" % dict(statuses))
    check(statuses == {"completed": N_RESTART + 1}, "all %d workflows completed" % (N_RESTART + 1))
    check(all(runs[wid][0][1] == {"n": i, "double": 2 * i, "attempt": 1} for i, wid in enumerate(ids)),
          "every output is right, each activity ran once")

    ev = collections.Counter(dict(conn.execute(
        "SELECT h.event_type, count(*) FROM durable.history h JOIN durable.workflows w USING (run_id) "
        " WHERE w.queue = %s AND w.workflow_id <> %s GROUP BY 1", (q, stale)).fetchall()))
    timed_out = ev["workflow_task_timed_out"] + ev["activity_attempt_timed_out"]
    logs = {p.name: pool.log(p) for p in everyone}
    handed = sum(int(n) for p in workers for n in re.findall(r"handed in (\d+) result", logs[p.name]))
    resent = sum(logs[p.name].count("delivered after reconnecting") for p in workers)
    print("on the 60 s-lease queue: %d lease expiries, %d failed attempts; after reconnecting the workers "
          "handed in %d result(s) finished while the server was down and re-sent %d call(s)"
          % (timed_out, ev["activity_attempt_failed"] + ev["workflow_task_failed"], handed, resent))
    check(handed + resent > 0, "results finished while the server was down were handed in after the restart")
    check(timed_out == 0, "no lease had to expire: what the workers held or computed across the outage was delivered")
    for p in workers + [idle]:
        check("WARNING" in logs[p.name] and "lost" in logs[p.name] and "reconnected" in logs[p.name],
              "%s logged the lost connection (WARNING) and its reconnect" % p.name)
    check("cannot connect" in logs[late.name] and "connected to the server after" in logs[late.name],
          "%s logged that it could not connect, then connected" % late.name)

    out = runs[stale][0][1]
    dropped = [line for line in logs[short.name].splitlines() if "DU004" in line]
    print("stale case: output %s; the short-lease worker logged: %s" % (out, dropped or "no DU004"))
    if out["attempt"] > 1:
        check(dropped, "the late result refused as stale (DU004) was dropped with a log line, and the "
              "activity ran again (attempt %d)" % out["attempt"])
    else:
        check(not dropped, "the late result was still accepted (its expiry was not processed yet)")
    pool.stop(everyone)
    conn.close()


def test_terminate(conn, pool, server):
    q = TAG + "-kill"
    app = TAG + "-kill-worker"
    workers = [pool.start("%s-w%d" % (q, i), q, "--lease", "10", "--concurrency", "4", "--poll-interval", "5",
                          appname=app) for i in range(2)]
    wait_for("both workers to connect", lambda: conn.execute(
        "SELECT count(DISTINCT pid) FROM pg_stat_activity WHERE application_name = %s", (app,)).fetchone()[0] >= 4,
        timeout=10)

    started = []
    feeding = threading.Event()
    feed_error = []

    def feed():
        try:
            with connect() as fc:
                t0 = time.monotonic()
                i = 0
                while feeding.is_set():
                    wid = "%s-%04d" % (q, i)
                    fc.execute("SELECT durable.wf_start('recon_flow', %s, %s, %s)",
                               (Jsonb({"n": i, "work": 0.02}), wid, q))
                    started.append(wid)
                    i += 1
                    time.sleep(max(0.0, t0 + i / FEED_RATE - time.monotonic()))
        except Exception as e:          # reported by the main thread
            feed_error.append(e)

    feeding.set()
    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    time.sleep(1.0)
    kill_from = conn.execute("SELECT clock_timestamp()").fetchone()[0]
    rounds = killed = 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < KILL_FOR:
        killed += conn.execute("SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                               " WHERE application_name = %s", (app,)).fetchone()[0]
        rounds += 1
        time.sleep(max(0.0, t0 + rounds * KILL_EVERY - time.monotonic()))
    kill_to = conn.execute("SELECT clock_timestamp()").fetchone()[0]
    time.sleep(1.0)
    feeding.clear()
    feeder.join(10)
    print("%d kill rounds over %.1f s terminated %d worker connections; %d workflows started at %d/s"
          % (rounds, KILL_FOR, killed, len(started), FEED_RATE), flush=True)
    if feed_error:
        raise feed_error[0]

    def open_runs():
        return conn.execute("SELECT count(*) FROM durable.workflows WHERE queue = %s AND status = 'running'",
                            (q,)).fetchone()[0]
    deadline = time.monotonic() + 20
    while open_runs() and time.monotonic() < deadline:
        time.sleep(0.1)
    statuses = collections.Counter(dict(conn.execute(
        "SELECT status, count(*) FROM durable.workflows WHERE queue = %s GROUP BY 1", (q,)).fetchall()))
    closed = [r[0] for r in conn.execute(
        "SELECT closed_at FROM durable.workflows WHERE queue = %s AND status = 'completed' ORDER BY closed_at",
        (q,)).fetchall()]
    gaps = [((b - a).total_seconds(), a) for a, b in zip(closed, closed[1:])]
    worst, at = max(gaps) if gaps else (float("inf"), None)
    in_window = [g for g, a in gaps if kill_from <= a <= kill_to]
    print("run statuses: %s; largest gap between consecutive completions: %.3f s (%s the kill window; "
          "largest inside it %.3f s)" % (dict(statuses), worst,
                                         "inside" if at and kill_from <= at <= kill_to else "outside",
                                         max(in_window) if in_window else float("nan")), flush=True)
    logs = {p.name: pool.log(p) for p in workers}
    resent = sum(log.count("delivered after reconnecting") for log in logs.values())
    print("reconnects of the poll loops: %s; task calls (step_record, task_suspend, ...) sent again on a new "
          "connection: %d" % ({n: log.count("reconnected") for n, log in logs.items()}, resent))
    running = alive(workers)
    print("worker processes running: %s" % running)

    check(all(running.values()), "both workers are still running after %d rounds of pg_terminate_backend" % rounds)
    check(killed >= rounds, "the kills hit the workers' connections (%d)" % killed)
    check(statuses == {"completed": len(started)}, "all %d workflows completed" % len(started))
    check(resent > 0, "task calls cut off by a kill were sent again on a new connection (%d)" % resent)
    check(worst <= MAX_GAP, "completions never stopped for more than %.1f s (largest gap %.3f s)" % (MAX_GAP, worst))
    pool.stop(workers)


def main():
    pool = Pool()
    server = None
    failed = []
    start = time.monotonic()
    parts = [("restart", test_restart), ("terminate", test_terminate)]
    only = os.environ.get("RECONNECT_ONLY")          # run one part: restart or terminate
    try:
        print("workers use %s" % pool.sdk(), flush=True)
        with connect() as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS durable")
            server = Server(conn)
    except Exception as e:
        print("FAILED with %s: %s" % (type(e).__name__, e), flush=True)
        failed.append("setup")
        parts = []
    for name, part in parts:
        if only and name != only:
            continue
        print("== %s" % name, flush=True)
        try:
            with connect() as conn:
                part(conn, pool, server)
        except TestFailure as e:
            print("FAILED: %s" % e, flush=True)
            failed.append(name)
        except Exception as e:      # psycopg errors, bugs in the test
            import traceback
            traceback.print_exc()
            print("FAILED with %s: %s" % (type(e).__name__, e), flush=True)
            failed.append(name)
        finally:
            if server.down:
                server.start()
            pool.stop()
    if failed:
        pool.dump()
    else:
        shutil.rmtree(pool.dir, ignore_errors=True)
    print("test_reconnect: %s in %.1f s" % ("FAIL (%s)" % ", ".join(failed) if failed else "PASS",
                                            time.monotonic() - start))
    print("FAIL" if failed else "PASS")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
