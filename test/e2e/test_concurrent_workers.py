#!/usr/bin/env python3
"""test/e2e/test_concurrent_workers.py: two worker processes, many workflows.

30 'order' workflows are started in one client transaction; two worker
processes (each polling the workflow queue and the activity queue) race
for the tasks, so claims really run concurrently with SKIP LOCKED.

Checks: every run completed with the right result and a complete journal;
every local step ran exactly once and every activity at least once; no
worker ever held a token that had been handed to someone else (a double
claim would show up as a stale token) and no worker saw an error; the hot
task table is empty at the end.
"""

import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_common import check, counters, main  # noqa: E402

from psycopg.types.json import Jsonb  # noqa: E402

N = 30


def expected(i):
    oid = f"o-{i}"
    return {"order": oid, "valid": True, "reservation": "r-" + oid,
            "charged": (i % 5 + 1) * 3, "box": "b-" + oid, "tracking": "t-" + oid}


def test(conn, workers):
    ids = [f"order-c-{i}" for i in range(N)]
    with conn.transaction():
        for i, wid in enumerate(ids):
            conn.execute("SELECT durable.wf_start('order', %s, workflow_id => %s, queue => 'e2e')",
                         (Jsonb({"order_id": f"o-{i}", "qty": i % 5 + 1, "price": 3}), wid))
    workers.start("w1", "--mode", "all", "--lease", "30 s")
    workers.start("w2", "--mode", "all", "--lease", "30 s")

    for i, wid in enumerate(ids):
        res = conn.execute("SELECT durable.wf_result(%s, '40 s') AS r", (wid,)).fetchone()["r"]
        if res != expected(i):
            st = conn.execute("SELECT durable.wf_describe(%s) AS d", (wid,)).fetchone()["d"]
            check(False, f"{wid}: result {res} != {expected(i)}; run: {st}")
    check(True, f"all {N} workflows completed with the right result")

    st = conn.execute("SELECT status, count(*) AS n FROM durable.workflows "
                      "WHERE workflow_id LIKE 'order-c-%%' GROUP BY status").fetchall()
    check([(r["status"], r["n"]) for r in st] == [("completed", N)],
          f"every run is completed: {[(r['status'], r['n']) for r in st]}")

    c = counters(conn, "order-c-")
    totals = {}
    for key, n in c.items():
        name = key.split(":")[1]
        totals[name] = totals.get(name, 0) + n
    print(f"execution counts over {N} runs: {totals}")
    for wid in ids:
        for step in ("step1", "step2", "step3"):
            if c.get(f"{wid}:{step}") != 1:
                check(False, f"{wid}: {step} ran {c.get(f'{wid}:{step}')} times, expected once")
        for act in ("charge", "ship"):
            if c.get(f"{wid}:{act}", 0) < 1:
                check(False, f"{wid}: activity {act} never ran")
    check(True, "every local step ran exactly once, every activity at least once")

    j = conn.execute("SELECT count(*) FILTER (WHERE status = 'completed') AS done, count(*) AS n "
                     "FROM durable.journal WHERE workflow_id LIKE 'order-c-%%'").fetchone()
    check(j["n"] == 5 * N and j["done"] == 5 * N, f"journals hold {5 * N} completed steps: {j}")

    left = conn.execute("SELECT count(*) AS n FROM durable.task_list").fetchone()["n"]
    check(left == 0, "no task is left in the hot table")

    workers.stop_all()
    for name in ("w1", "w2"):
        m = re.findall(r"stats (\{.*\})", workers.log(name))
        check(len(m) == 1, f"worker {name} shut down cleanly and printed its stats")
        stats = json.loads(m[0])
        print(f"worker {name}: {stats}")
        check(stats["stale"] == 0, f"worker {name} never held a token that was handed to another worker")
        check(stats["errors"] == 0, f"worker {name} saw no errors")


if __name__ == "__main__":
    main(test)
