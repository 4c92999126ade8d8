"""test/e2e/test_wf_result_wait.py: wf_result(id, wait) sleeps until the
run closes instead of re-reading it every 10 ms.

1. A wait of 3 s on a run that stays open reads durable.runs a handful of
   times (the one-second safety net), not hundreds: counted as scans of
   the index it reads runs by (durable.runs_workflow_id, which the
   background worker does not use), flushed by the waiting session.
2. A client waiting up to 60 s gets the result of a run that another
   session completes while it waits (the commit wakes it), and a failed
   run's error (DU010).
"""

import sys
import threading
import time

import psycopg

from e2e_common import TestFailure, check, connect, setup_database


def runs_index_scans(conn):
    conn.execute("SELECT pg_stat_clear_snapshot()")
    return conn.execute(
        "SELECT idx_scan FROM pg_stat_user_indexes"
        " WHERE indexrelid = 'durable.runs_workflow_id'::regclass"
    ).fetchone()["idx_scan"]


def main():
    admin = connect()
    setup_database(admin)
    admin.execute("SELECT durable.wf_start('w', NULL, 'res-open', 'resq')")

    # 1. an open run: the wait reads it about once a second
    # the background worker's rounds read that index too: measure them
    # over the same time without a waiter first
    waiter = connect()
    before = runs_index_scans(admin)
    time.sleep(3)
    idle = runs_index_scans(admin) - before
    before = runs_index_scans(admin)
    waiter.execute("SELECT pg_stat_force_next_flush()")
    t0 = time.monotonic()
    out = waiter.execute("SELECT durable.wf_result('res-open', '3 s') AS r").fetchone()["r"]
    waited = time.monotonic() - t0
    waiter.execute("SELECT pg_stat_force_next_flush()")
    waiter.execute("SELECT 1")
    after = runs_index_scans(admin)
    reads = (after - before) - idle
    print(f"waited {waited:.2f} s on an open run; scans of durable.runs_workflow_id: "
          f"{after - before}, {idle} in 3 s without a waiter", flush=True)
    check(out is None, "an open run's result is NULL after the wait")
    check(waited >= 2.9, "wf_result waited the whole 3 s")
    check(reads <= 20, f"a 3 s wait read the run about {reads} times (10 ms polling: about 300)")

    # 2. woken by another session's commit
    result = {}

    def wait_result(wid):
        c = connect()
        t = time.monotonic()
        try:
            result[wid] = c.execute("SELECT durable.wf_result(%s, '60 s') AS r",
                                    (wid,)).fetchone()["r"]
        except psycopg.Error as e:
            result[wid] = f"{e.sqlstate}: {e.diag.message_primary}"
        result[wid + ".s"] = time.monotonic() - t

    for wid in ("res-done", "res-failed"):
        admin.execute("SELECT durable.wf_start('w', NULL, %s, 'resq')", (wid,))
    threads = [threading.Thread(target=wait_result, args=(w,)) for w in ("res-done", "res-failed")]
    for t in threads:
        t.start()
    time.sleep(0.5)
    toks = {r["workflow_id"]: r["token"] for r in admin.execute(
        "SELECT workflow_id, token FROM durable.task_poll('resq', 'w', 10)").fetchall()}
    admin.execute("SELECT durable.task_complete(%s, '{\"ok\": true}')", (toks["res-done"],))
    admin.execute("SELECT durable.task_fail(%s, '{\"type\": \"Boom\", \"message\": \"no\"}', false)",
                  (toks["res-failed"],))
    for t in threads:
        t.join(70)
    print(f"results: {result}", flush=True)
    check(result.get("res-done") == {"ok": True}, "a waiting client gets the result when the run completes")
    check(str(result.get("res-failed", "")).startswith("DU010"), "a waiting client gets DU010 when the run fails")
    check(result["res-done.s"] < 59, "the completed run's waiter returned before its wait ran out")
    print("PASS")


if __name__ == "__main__":
    try:
        main()
    except TestFailure as e:
        print(f"FAIL: {e}")
        sys.exit(1)
