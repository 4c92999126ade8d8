#!/usr/bin/env python3
"""test/e2e/test_kill_worker.py: kill -9 a worker in the middle of a workflow.

Worker A (workflow tasks only, 2 s lease) runs the 'order' workflow and is
told to pause right after checkpointing step 2; the test SIGKILLs it
there.  Its lease expires (background worker or the next poll), worker B
gets the workflow task again, replays steps 1 and 2 from the journal
without running them and finishes the run.  An activity worker runs the
activities throughout.

Checks: steps 1, 2 and 3 ran exactly once (their counter rows are written
in the same transaction as step_record), activities at least once, the
result is right, the journal is complete and the history shows the lease
expiry.

A second run does the same with the kill inside step 3's transaction,
after the step's own write and before step_record commits: the write rolls
back with the transaction, the next worker runs step 3 again, and it still
counts once.
"""

import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_common import check, counters, main, wait_for  # noqa: E402

from psycopg.types.json import Jsonb  # noqa: E402

WID = "order-kill-1"
INPUT = {"order_id": "o-42", "qty": 3, "price": 7}
EXPECTED = {"order": "o-42", "valid": True, "reservation": "r-o-42",
            "charged": 21, "box": "b-o-42", "tracking": "t-o-42"}


def journal(conn):
    return conn.execute(
        "SELECT seq, kind, name, status, result FROM durable.journal "
        "WHERE workflow_id = %s ORDER BY seq", (WID,)).fetchall()


def test(conn, workers):
    workers.start("act-1", "--mode", "activity", "--lease", "5 s")
    a = workers.start("wf-A", "--mode", "workflow", "--lease", "2 s",
                      env={"E2E_PAUSE_AFTER": "step2", "E2E_PAUSE_SECONDS": "60"})

    conn.execute("SELECT durable.wf_start('order', %s, workflow_id => %s, queue => 'e2e')",
                 (Jsonb(INPUT), WID))

    # step 2 is checkpointed and worker A sleeps right after it
    wait_for("step 2 to be checkpointed",
             lambda: any(r["seq"] == 2 and r["status"] == "completed" for r in journal(conn)))
    wait_for("worker A to pause after step2",
             lambda: "pausing" in workers.log("wf-A"))
    before = counters(conn, WID)
    print(f"counters when worker A is killed: {before}")
    check(before == {f"{WID}:step1": 1, f"{WID}:step2": 1},
          "before the kill, steps 1 and 2 ran once and nothing else ran")
    check(a.poll() is None, "worker A is alive in its pause")

    os.kill(a.pid, signal.SIGKILL)
    a.wait()
    check(a.returncode == -signal.SIGKILL, f"worker A died of SIGKILL (rc {a.returncode})")

    tasks = conn.execute("SELECT kind, state, worker, attempt FROM durable.task_list "
                         "WHERE workflow_id = %s", (WID,)).fetchall()
    print(f"tasks of {WID} right after the kill: {tasks}")

    workers.start("wf-B", "--mode", "workflow", "--lease", "2 s")

    res = conn.execute("SELECT durable.wf_result(%s, '45 s') AS r", (WID,)).fetchone()["r"]
    status = conn.execute("SELECT durable.wf_status(%s) AS s", (WID,)).fetchone()["s"]
    print(f"status {status}, result {res}")
    check(status == "completed", f"workflow completed (status {status})")
    check(res == EXPECTED, f"result combines every step: {res}")

    c = counters(conn, WID)
    print("execution counts: " + ", ".join(f"{k.split(':')[1]}={v}" for k, v in c.items()))
    check(c.get(f"{WID}:step1") == 1, "step1 ran exactly once")
    check(c.get(f"{WID}:step2") == 1, "step2 ran exactly once (not redone after the kill)")
    check(c.get(f"{WID}:step3") == 1, "step3 ran exactly once")
    check(c.get(f"{WID}:charge", 0) >= 1, "activity charge ran at least once")
    check(c.get(f"{WID}:ship", 0) >= 1, "activity ship ran at least once")

    j = journal(conn)
    shape = [(r["seq"], r["kind"], r["name"], r["status"]) for r in j]
    check(shape == [(1, "local", "step1", "completed"), (2, "local", "step2", "completed"),
                    (3, "activity", "charge", "completed"), (4, "local", "step3", "completed"),
                    (5, "activity", "ship", "completed")],
          f"journal holds the five steps, all completed: {shape}")

    hist = conn.execute("SELECT event_type, seq, details FROM durable.wf_history(%s)",
                        (WID,)).fetchall()
    print("history: " + ", ".join(h["event_type"] + ("" if h["seq"] is None else f"#{h['seq']}")
                                  for h in hist))
    expiries = [h for h in hist if h["event_type"] == "workflow_task_timed_out"]
    check(len(expiries) >= 1, "history shows the killed worker's lease expiring")
    check(hist[-1]["event_type"] == "workflow_completed", "history ends with workflow_completed")

    blog = workers.log("wf-B")
    check(f"{WID}: workflow task attempt 2, journal has 2 entries" in blog,
          "worker B got the workflow task again (attempt 2) and replayed a journal of 2 steps")
    check("step 1 step1 checkpointed" not in blog and "step 2 step2 checkpointed" not in blog,
          "worker B did not re-run steps 1 and 2")
    left = conn.execute("SELECT count(*) AS n FROM durable.task_list WHERE workflow_id = %s",
                        (WID,)).fetchone()["n"]
    check(left == 0, "the closed run has no outstanding tasks")


WID2 = "order-kill-2"
INPUT2 = {"order_id": "o-43", "qty": 2, "price": 5}
EXPECTED2 = {"order": "o-43", "valid": True, "reservation": "r-o-43",
             "charged": 10, "box": "b-o-43", "tracking": "t-o-43"}


def test_kill_inside(conn, workers):
    """Kill a worker between step 3's own write and its step_record commit."""
    a = workers.start("wf-A2", "--mode", "workflow", "--queue", "e2e2", "--lease", "2 s",
                      env={"E2E_PAUSE_INSIDE": "step3", "E2E_PAUSE_SECONDS": "60"})
    conn.execute("SELECT durable.wf_start('order', %s, workflow_id => %s, queue => 'e2e2')",
                 (Jsonb(INPUT2), WID2))
    wait_for("worker A2 to pause inside step3",
             lambda: "pausing" in workers.log("wf-A2"))
    before = counters(conn, WID2)
    print(f"counters when worker A2 is killed: {before}")
    check(before.get(f"{WID2}:step1") == 1 and before.get(f"{WID2}:step2") == 1
          and f"{WID2}:step3" not in before,
          "before the kill, steps 1 and 2 counted once and step 3's write is not committed")
    os.kill(a.pid, signal.SIGKILL)
    a.wait()
    check(a.returncode == -signal.SIGKILL, f"worker A2 died of SIGKILL (rc {a.returncode})")

    workers.start("wf-B2", "--mode", "workflow", "--queue", "e2e2", "--lease", "2 s")
    res = conn.execute("SELECT durable.wf_result(%s, '45 s') AS r", (WID2,)).fetchone()["r"]
    check(res == EXPECTED2, f"{WID2}: result combines every step: {res}")
    c = counters(conn, WID2)
    print("execution counts: " + ", ".join(f"{k.split(':')[1]}={v}" for k, v in c.items()))
    for step in ("step1", "step2", "step3"):
        check(c.get(f"{WID2}:{step}") == 1, f"{WID2}: {step} counted exactly once")
    hist = [h["event_type"] for h in
            conn.execute("SELECT event_type FROM durable.wf_history(%s)", (WID2,)).fetchall()]
    check("workflow_task_timed_out" in hist, f"{WID2}: history shows the lease expiring")
    check(f"{WID2}: workflow task attempt 2, journal has 3 entries" in workers.log("wf-B2"),
          "worker B2 got the workflow task again and replayed a journal of 3 steps")


def test_all(conn, workers):
    test(conn, workers)
    test_kill_inside(conn, workers)


if __name__ == "__main__":
    main(test_all)
