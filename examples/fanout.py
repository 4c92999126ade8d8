"""examples/fanout.py: fan out 100 activities, fan in their sum.

The workflow starts one activity per item with ctx.start_activity (no
waiting), so its first workflow task hands the engine all 100 commands in
one call; activity workers run them in parallel; ctx.gather waits until
every one has resolved, and a local step adds the results up.  Each time
an activity finishes the workflow replays from its journal; calls already
made are not made again.

    /usr/bin/python3 examples/fanout.py [N]

or with worker processes (activities on their own queue):

    PYTHONPATH=clients/python:. /usr/bin/python3 -m durable_worker --queue fanout examples.fanout
    PYTHONPATH=clients/python:. /usr/bin/python3 -m durable_worker --queue fanout-work --concurrency 8 examples.fanout
    psql -c "SELECT durable.wf_start('fanout_sum', '{\"n\": 100, \"queue\": \"fanout-work\"}', 'sum-1', 'fanout')"
"""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python"))
import durable_worker as dw  # noqa: E402


@dw.activity()
def square(ctx, x):
    return x * x


@dw.workflow()
def fanout_sum(ctx, job):
    n = job.get("n", 100)
    handles = [ctx.start_activity("square", i, queue=job.get("queue"), start_to_close="30s",
                                  retry={"initial_interval": "200ms"})
               for i in range(1, n + 1)]
    squares = ctx.gather(*handles)
    total = ctx.step("sum", lambda: sum(squares))
    return {"n": n, "sum": total}


def main():
    import threading
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    client = dw.Client("")
    client.conn.execute("CREATE EXTENSION IF NOT EXISTS durable")
    # one worker for the workflow, one with more slots for the activities
    wf = dw.Worker("", queue="fanout", concurrency=1, lease=10, poll_interval=1)
    acts = dw.Worker("", queue="fanout-work", concurrency=8, lease=10, poll_interval=1)
    threads = [threading.Thread(target=w.run, daemon=True) for w in (wf, acts)]
    for t in threads:
        t.start()

    wid = "fanout-%d-%d" % (os.getpid(), int(time.time()))
    start = time.monotonic()
    client.start("fanout_sum", {"n": n, "queue": "fanout-work"}, workflow_id=wid, queue="fanout")
    result = client.result(wid, wait=60)
    elapsed = time.monotonic() - start
    for w in (wf, acts):
        w.stop()
    for t in threads:
        t.join(10)
    expected = n * (n + 1) * (2 * n + 1) // 6
    tasks = client.conn.execute(
        "SELECT count(*) FILTER (WHERE kind = 'activity'), count(*) FROM durable.journal "
        " WHERE workflow_id = %s", (wid,)).fetchone()
    print("%s: sum of squares 1..%d = %s (expected %d); %d activities in the journal; %.2f s"
          % (wid, n, result and result["sum"], expected, tasks[0], elapsed))
    ok = result is not None and result["sum"] == expected and tasks[0] == n
    print("fanout example: %s" % ("OK" if ok else "UNEXPECTED RESULT"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
