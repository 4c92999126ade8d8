#!/usr/bin/env python3
"""test/e2e/test_examples.py: every example in examples/ works as documented.

For each of saga, approval, fanout and nightly: run the example script
itself (it runs an in-process worker and checks its own outcome: exit 0
and "OK"), then drive it the way examples/README.md shows, with a real
worker process (python3 -m durable_worker --queue Q examples.X) and plain
SQL, and check the outcome in the database.

Run as postgres with PG* pointing at a preloaded server.
"""

import datetime
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))

import psycopg  # noqa: E402
from e2e_common import TestFailure as Failure, check, wait_for  # noqa: E402
from psycopg.types.json import Jsonb  # noqa: E402

TAG = "ex%d" % os.getpid()
LOGDIR = tempfile.mkdtemp(prefix="durable-examples-")
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(REPO, "clients", "python"), REPO]))


def run_script(name, *args):
    """Run examples/<name>.py; return (rc, output)."""
    p = subprocess.run([sys.executable, os.path.join(REPO, "examples", name + ".py"), *args],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120,
                       env=ENV, cwd=REPO)
    print("".join("    | " + line + "\n" for line in p.stdout.splitlines()), end="")
    return p.returncode, p.stdout


class WorkerProcess:
    """python3 -m durable_worker --queue Q examples.<module>, as the README shows."""

    def __init__(self, module, queue, *args):
        self.log = os.path.join(LOGDIR, "%s-%s.log" % (module.replace(".", "_"), queue))
        with open(self.log, "w") as f:
            self.p = subprocess.Popen([sys.executable, "-m", "durable_worker", "--queue", queue,
                                       "--poll-interval", "1", *args, module],
                                      stdout=f, stderr=subprocess.STDOUT, env=ENV, cwd=REPO)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *_):
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        if exc_type is not None:
            with open(self.log) as f:
                print("----- %s -----\n%s-----" % (self.log, f.read()))
        return False


def result(conn, wid, wait="30 s"):
    return conn.execute("SELECT durable.wf_result(%s, %s)", (wid, wait)).fetchone()[0]


# -- the examples

def test_saga(conn):
    rc, out = run_script("saga")
    check(rc == 0 and "saga example: OK" in out, "examples/saga.py runs and reports OK")

    sys.path.insert(0, REPO)
    sys.path.insert(0, os.path.join(REPO, "clients", "python"))
    from examples import saga
    saga.setup(conn)
    a, b, c = (TAG + "-" + n for n in ("ann", "ben", "cat"))
    saga.open_account(conn, a, 100)
    saga.open_account(conn, b, 5)
    saga.open_account(conn, c, 0, frozen=True)
    q = TAG + "-saga"
    transfers = {"ok": (a, b, 40), "frozen": (a, c, 10), "broke": (b, a, 1000)}
    with WorkerProcess("examples.saga", q):
        for k, (src, dst, amount) in transfers.items():
            conn.execute("SELECT durable.wf_start('transfer', %s, %s, %s)",
                         (Jsonb({"id": TAG + "-" + k, "from": src, "to": dst, "amount": amount}),
                          TAG + "-transfer-" + k, q))
        res = {k: result(conn, TAG + "-transfer-" + k) for k in transfers}
    check({k: r["status"] for k, r in res.items()} == {"ok": "completed", "frozen": "refunded",
                                                        "broke": "rejected"},
          "worker process: completed, refunded (frozen destination), rejected (no funds)")
    bal = dict(conn.execute("SELECT id, balance FROM saga_accounts WHERE id IN (%s, %s, %s)",
                            (a, b, c)).fetchall())
    check(bal == {a: 60, b: 45, c: 0}, "balances after debit, credit and refund: %s" % bal)
    steps = conn.execute("SELECT transfer_id, string_agg(step, ',' ORDER BY at) FROM saga_audit "
                         " WHERE transfer_id LIKE %s GROUP BY 1 ORDER BY 1", (TAG + "-%",)).fetchall()
    check(dict(steps) == {TAG + "-ok": "debit,complete", TAG + "-frozen": "debit,refund",
                          TAG + "-broke": "debit"}, "each SQL step ran once: %s" % steps)
    hist = conn.execute("SELECT event_type FROM durable.wf_history(%s) WHERE event_type LIKE 'activity%%'",
                        (TAG + "-transfer-frozen",)).fetchall()
    check(("activity_failed",) in hist, "the frozen credit failed for good (non_retryable_error_types)")


def test_approval(conn):
    rc, out = run_script("approval")
    check(rc == 0 and "approval example: OK" in out, "examples/approval.py runs and reports OK")

    q = TAG + "-approval"
    yes, no = TAG + "-order-yes", TAG + "-order-no"
    with WorkerProcess("examples.approval", q):
        conn.execute("SELECT durable.wf_start('order_approval', %s, %s, %s)",
                     (Jsonb({"order": "y", "timeout": "1h"}), yes, q))
        conn.execute("SELECT durable.wf_start('order_approval', %s, %s, %s)",
                     (Jsonb({"order": "n", "timeout": "1s"}), no, q))
        wait_for("order y to wait for approval", lambda: conn.execute(
            "SELECT 1 FROM durable.journal WHERE workflow_id = %s AND kind = 'signal' "
            "   AND status = 'pending'", (yes,)).fetchone())
        conn.execute("SELECT durable.wf_signal(%s, 'approve', %s)", (yes, Jsonb({"by": "grace"})))
        r_yes, r_no = result(conn, yes), result(conn, no)
    check(r_yes == {"order": "y", "status": "approved", "approved_by": "grace", "tracking": "trk-y"},
          "approved in time: shipped (%s)" % r_yes)
    check(r_no == {"order": "n", "status": "timed_out"}, "no approval within 1 s: timed out (%s)" % r_no)
    steps = [r[0] for r in conn.execute("SELECT name FROM durable.journal WHERE workflow_id = %s "
                                        " ORDER BY seq", (no,))]
    check(steps == ["record_order", "approve", "cancel_order"], "the timed-out order was cancelled: %s" % steps)


def test_fanout(conn):
    rc, out = run_script("fanout")
    check(rc == 0 and "fanout example: OK" in out, "examples/fanout.py runs and reports OK")

    q, work = TAG + "-fanout", TAG + "-fanout-work"
    wid = TAG + "-sum"
    with WorkerProcess("examples.fanout", q), WorkerProcess("examples.fanout", work, "--concurrency", "8"):
        conn.execute("SELECT durable.wf_start('fanout_sum', %s, %s, %s)",
                     (Jsonb({"n": 100, "queue": work}), wid, q))
        r = result(conn, wid, "60 s")
    check(r == {"n": 100, "sum": 338350}, "100 activities fanned in to the sum of squares (%s)" % r)
    kinds = dict(conn.execute("SELECT kind, count(*) FROM durable.journal WHERE workflow_id = %s "
                              " GROUP BY kind", (wid,)).fetchall())
    check(kinds == {"activity": 100, "local": 1}, "journal: 100 activities and the sum step (%s)" % kinds)
    queues = conn.execute("SELECT DISTINCT queue FROM durable.journal WHERE workflow_id = %s "
                          "   AND kind = 'activity'", (wid,)).fetchall()
    check(queues == [(work,)], "the activities ran on their own queue")


def test_nightly(conn):
    rc, out = run_script("nightly", "--name", TAG + "-main-nightly")
    check(rc == 0 and "nightly example: OK" in out, "examples/nightly.py runs and reports OK")
    check(conn.execute("SELECT count(*) FROM durable.schedule_list WHERE name = %s",
                       (TAG + "-main-nightly",)).fetchone()[0] == 0, "the example deleted its schedule")

    sys.path.insert(0, REPO)
    from examples import nightly
    nightly.setup(conn)
    name, q = TAG + "-nightly", TAG + "-nightly-q"
    first = conn.execute("SELECT durable.schedule_create(%s, '0 3 * * *', 'nightly_report', NULL, %s)",
                         (name, Jsonb({"queue": q}))).fetchone()[0]
    first = first.astimezone(datetime.timezone.utc)
    check((first.hour, first.minute, first.second) == (3, 0, 0),
          "schedule '0 3 * * *' fires next at 03:00 UTC (%s)" % first)
    check(conn.execute("SELECT count(*) FROM durable.workflows WHERE workflow_id LIKE %s",
                       (name + "-%",)).fetchone()[0] == 0, "nothing runs before a fire")
    with WorkerProcess("examples.nightly", q):
        now_id = conn.execute("SELECT durable.schedule_trigger(%s)", (name,)).fetchone()[0]
        check(now_id is not None and now_id.startswith(name + "-"), "schedule_trigger started %s" % now_id)
        n = conn.execute("SELECT durable.schedule_backfill(%s, "
                         "  date_trunc('day', now()) - interval '2 days', date_trunc('day', now()))",
                         (name,)).fetchone()[0]
        check(n == 2, "schedule_backfill over two days started two runs (%d)" % n)
        again = conn.execute("SELECT durable.schedule_backfill(%s, "
                             "  date_trunc('day', now()) - interval '2 days', date_trunc('day', now()))",
                             (name,)).fetchone()[0]
        check(again == 0, "backfilling the same days again starts nothing")
        ids = [r[0] for r in conn.execute("SELECT workflow_id FROM durable.workflows WHERE workflow_id LIKE %s "
                                          " ORDER BY workflow_id", (name + "-%",))]
        res = {wid: result(conn, wid) for wid in ids}
    check(len(ids) == 3 and all(i.endswith("T030000Z") for i in ids if i != now_id),
          "three runs, the backfilled ones named after their 03:00 fire times: %s" % ids)
    check(all(r is not None and r["day_end"] == nightly.fire_time(w) for w, r in res.items()),
          "each run reported the day its fire time ends")
    stored = conn.execute("SELECT count(*) FROM nightly_reports WHERE workflow_id = ANY(%s)",
                          (ids,)).fetchone()[0]
    check(stored == 3, "each report was stored once (%d rows)" % stored)
    fires = conn.execute("SELECT fires, paused FROM durable.schedule_list WHERE name = %s", (name,)).fetchone()
    check(fires == (3, False), "schedule_list counts three fires (%s)" % (fires,))
    conn.execute("SELECT durable.schedule_delete(%s)", (name,))


TESTS = [test_saga, test_approval, test_fanout, test_nightly]


def main():
    only = set(sys.argv[1:])
    failed = []
    start = time.monotonic()
    with psycopg.connect("", autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS durable")
        for t in TESTS:
            if only and t.__name__ not in only:
                continue
            print(t.__name__, flush=True)
            t0 = time.monotonic()
            try:
                t(conn)
                print("  passed (%.1f s)" % (time.monotonic() - t0), flush=True)
            except Exception as e:
                failed.append(t.__name__)
                print("  FAILED: %s: %s" % (type(e).__name__, e), flush=True)
                if not isinstance(e, Failure):
                    traceback.print_exc()
    ran = len(only) if only else len(TESTS)
    print("test_examples: %d of %d passed in %.1f s%s" % (ran - len(failed), ran, time.monotonic() - start,
                                                         "; failed: " + ", ".join(failed) if failed else ""))
    print("PASS" if not failed else "FAIL")
    if not failed:
        shutil.rmtree(LOGDIR, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
