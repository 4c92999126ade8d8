"""examples/approval.py: an order that waits for a human's approval.

The workflow records the order (a local step), then waits for the signal
'approve' with a timeout.  Approved in time: it ships the order (an
activity) and returns the approver's name.  No answer in time: the wait
raises DurableTimeout and the order is cancelled (another local step).
The wait is a durable timer in the database: no worker holds anything
while the order waits, and workers may restart meanwhile.

Run it in one process (two orders: one approved, one left to time out):

    /usr/bin/python3 examples/approval.py

or with a worker process and psql:

    PYTHONPATH=clients/python:. /usr/bin/python3 -m durable_worker --queue approval examples.approval
    psql -c "SELECT durable.wf_start('order_approval', '{\"order\": \"o-1\", \"timeout\": \"1h\"}', 'order-o-1', 'approval')"
    psql -c "SELECT durable.wf_signal('order-o-1', 'approve', '{\"by\": \"ada\"}')"
    psql -c "SELECT durable.wf_result('order-o-1', '10 s')"
"""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python"))
import durable_worker as dw  # noqa: E402


@dw.activity()
def ship_order(ctx, order):
    return {"tracking": "trk-" + order["order"]}


@dw.workflow()
def order_approval(ctx, order):
    ctx.step("record_order", lambda: {"order": order["order"], "state": "awaiting approval"})
    try:
        decision = ctx.wait_signal("approve", timeout=order.get("timeout", "1d"))
    except dw.DurableTimeout:
        ctx.step("cancel_order", lambda: {"order": order["order"], "state": "cancelled"})
        return {"order": order["order"], "status": "timed_out"}
    shipment = ctx.activity("ship_order", order, start_to_close="30s")
    return {"order": order["order"], "status": "approved",
            "approved_by": (decision or {}).get("by"), "tracking": shipment["tracking"]}


def main():
    import threading
    queue = "approval"
    client = dw.Client("")
    client.conn.execute("CREATE EXTENSION IF NOT EXISTS durable")
    worker = dw.Worker("", queue=queue, concurrency=2, lease=10, poll_interval=1)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()

    tag = "%d-%d" % (os.getpid(), int(time.time()))
    fast, slow = "order-approved-" + tag, "order-timeout-" + tag
    client.start("order_approval", {"order": "a-" + tag, "timeout": "1h"}, workflow_id=fast, queue=queue)
    client.start("order_approval", {"order": "b-" + tag, "timeout": "2s"}, workflow_id=slow, queue=queue)
    print("started %s (timeout 1h) and %s (timeout 2s)" % (fast, slow))

    # wait until the first order is waiting for its signal, then approve it
    deadline = time.monotonic() + 30
    while not any(s["kind"] == "signal" for s in client.describe(fast)["pending_steps"]):
        if time.monotonic() > deadline:
            print("order never started waiting")
            return 1
        time.sleep(0.1)
    client.signal(fast, "approve", {"by": "ada"})
    print("signalled approve to %s" % fast)

    r1 = client.result(fast, wait=30)
    r2 = client.result(slow, wait=30)
    print("  %s: %s" % (fast, r1))
    print("  %s: %s" % (slow, r2))
    worker.stop()
    thread.join(10)
    ok = (r1 or {}).get("status") == "approved" and r1.get("approved_by") == "ada" \
        and (r2 or {}).get("status") == "timed_out"
    print("approval example: %s" % ("OK" if ok else "UNEXPECTED RESULT"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
