#!/usr/bin/env python3
"""test/conformance/python/worker.py: the conformance worker of the Python SDK.

Serves the workflows and activities of test/conformance/scenarios under
their fixed names (conf_*), with clients/python/durable_worker.  The worker
contract (test/conformance/README.md):

  - connection: the libpq environment (PGHOST, PGPORT, PGUSER, PGDATABASE,
    PGPASSWORD);
  - CONFORMANCE_QUEUE: the queue to serve (workflows and activities);
  - CONFORMANCE_LEASE: the lease of its tasks, in seconds;
  - CONFORMANCE_VARIANT: "changed" deploys the changed code of
    conf_nondeterminism, anything else the original code;
  - CONFORMANCE_WORKER_NAME: the worker's name;
  - prints "MARK <workflow id> <label>" lines (flushed) where the scenarios
    say so; SIGTERM stops it cleanly (exit status 0).
"""

import logging
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "clients", "python"))

import durable_worker as dw  # noqa: E402

VARIANT = os.environ.get("CONFORMANCE_VARIANT", "")


def mark(workflow_id, label):
    print("MARK %s %s" % (workflow_id, label), flush=True)


# -- local_steps ------------------------------------------------------------

@dw.workflow("conf_local_steps")
def local_steps(ctx, inp):
    def step(name, value):
        def fn():
            mark(ctx.workflow_id, "step:" + name)
            return value
        return ctx.step(name, fn)

    greeting = step("greet", "Hello, " + inp["name"])
    count = step("count", 3)
    ctx.sleep(0.1)
    items = step("items", ["a", 1, True, None])
    nothing = step("nothing", None)
    obj = step("object", {"nested": {"k": "v"}, "empty": {}})
    return {"greeting": greeting, "count": count, "items": items,
            "nothing": nothing, "object": obj}


# -- sql_step ---------------------------------------------------------------

@dw.workflow("conf_sql_step")
def sql_step(ctx, inp):
    prepared = ctx.step("prepare", lambda: {"amount": inp["amount"]})

    def debit(conn):
        mark(ctx.workflow_id, "debit:run")
        conn.execute("INSERT INTO conformance_effects (workflow_id, effect, amount)"
                     " VALUES (%s, 'debit', %s)", (ctx.workflow_id, prepared["amount"]))
        if ctx.attempt == 1:
            mark(ctx.workflow_id, "debit:inside")
            time.sleep(60)                      # the runner kills the worker here
        return {"debited": prepared["amount"]}

    debited = ctx.transaction("debit", debit)
    ctx.sleep(0.1)
    return debited


# -- activities -------------------------------------------------------------

RETRY_FAST = {"initial_interval": "100ms", "backoff_coefficient": 2, "maximum_attempts": 5}


@dw.workflow("conf_activity_retry")
def activity_retry(ctx, inp):
    return ctx.activity("conf_flaky", inp, retry=RETRY_FAST, start_to_close="10s")


@dw.activity("conf_flaky")
def flaky(ctx, inp):
    if ctx.attempt < inp["succeed_on"]:
        raise type("Flaky", (Exception,), {})("attempt %d failed" % ctx.attempt)
    return {"attempt": ctx.attempt}


@dw.workflow("conf_activity_errors")
def activity_errors(ctx, inp):
    try:
        ctx.activity("conf_fail", inp["first"], start_to_close="10s",
                     retry=dict(RETRY_FAST, non_retryable_error_types=["Fatal"]))
        caught = None
    except dw.ActivityError as e:
        err = {"type": e.type, "message": str(e)}
        caught = ctx.step("caught", lambda: err)
    ctx.activity("conf_fail_hard", inp["second"], start_to_close="10s", retry=RETRY_FAST)
    return {"caught": caught}


@dw.activity("conf_fail")
def fail(ctx, inp):
    raise type(inp["type"], (Exception,), {})(inp["message"])


@dw.activity("conf_fail_hard")
def fail_hard(ctx, inp):
    raise type(inp["type"], (dw.NonRetryableError,), {})(inp["message"])


# -- timers -----------------------------------------------------------------

@dw.workflow("conf_timers")
def timers(ctx, inp):
    ctx.sleep("200ms")
    ctx.step("between", lambda: "after the first timer")
    ctx.sleep(0.2)
    h = ctx.start_timer("1h")
    h.cancel()
    try:
        h.result()
        got = "not cancelled"
    except dw.CancelledError as e:
        got = {"type": e.type, "message": str(e)}
    ctx.step("cancelled", lambda: got)
    return "done"


# -- signals ----------------------------------------------------------------

@dw.workflow("conf_signals")
def signals(ctx, inp):
    first = ctx.wait_signal("first")
    second = ctx.wait_signal("second")
    try:
        ctx.wait_signal("never", timeout="200ms")
        timed_out = None
    except dw.DurableTimeout as e:
        err = {"type": e.type, "message": str(e)}
        timed_out = ctx.step("timed_out", lambda: err)
    return {"first": first, "second": second, "timed_out": timed_out}


# -- children ---------------------------------------------------------------

@dw.workflow("conf_children")
def children(ctx, inp):
    ok = ctx.child("conf_child_ok", {"x": 2}, workflow_id=inp["ok_id"])
    try:
        ctx.child("conf_child_fail", {"message": "child broke"}, workflow_id=inp["fail_id"])
        error = None
    except dw.ActivityError as e:
        err = {"type": e.type, "message": str(e)}
        error = ctx.step("child_error", lambda: err)
    return {"ok": ok, "error": error}


@dw.workflow("conf_child_ok")
def child_ok(ctx, inp):
    return {"y": ctx.step("double", lambda: inp["x"] * 2)}


@dw.workflow("conf_child_fail")
def child_fail(ctx, inp):
    raise dw.ApplicationError(inp["message"], type="ChildBroke")


@dw.workflow("conf_parent_close")
def parent_close(ctx, inp):
    ctx.start_child("conf_child_wait", {"policy": inp["policy"]}, workflow_id=inp["child_id"],
                    parent_close_policy=inp["policy"])
    ctx.wait_signal("close")
    return "closed"


@dw.workflow("conf_child_wait")
def child_wait(ctx, inp):
    return ctx.wait_signal("finish")


# -- continue-as-new --------------------------------------------------------

@dw.workflow("conf_continue_as_new")
def continue_as_new(ctx, inp):
    n = ctx.step("visit", lambda: inp["n"])
    if n < inp["last"]:
        ctx.continue_as_new({"n": n + 1, "last": inp["last"]})
    return {"runs": n + 1}


# -- cancellation through heartbeats ----------------------------------------

@dw.workflow("conf_cancel_activity")
def cancel_activity(ctx, inp):
    try:
        return ctx.activity("conf_wait_cancel", {"max_seconds": 20}, start_to_close="30s",
                            retry={"maximum_attempts": 1})
    except dw.CancelledError:
        ctx.activity("conf_cleanup", {"after": "cancel"}, start_to_close="10s")
        raise


@dw.activity("conf_wait_cancel")
def wait_cancel(ctx, inp):
    mark(ctx.workflow_id, "activity:started")
    deadline = time.monotonic() + inp["max_seconds"]
    while time.monotonic() < deadline:
        if ctx.heartbeat({"alive": True}):
            raise dw.CancelledError({"type": "cancelled", "message": "activity cancelled"})
        time.sleep(0.1)
    return "not cancelled"


@dw.activity("conf_cleanup")
def cleanup(ctx, inp):
    return {"cleaned": True}


# -- nondeterminism ---------------------------------------------------------

@dw.workflow("conf_nondeterminism")
def nondeterminism(ctx, inp):
    name = "b" if VARIANT == "changed" else "a"
    ctx.step(name, lambda: name.upper())
    ctx.wait_signal("go")
    return "done"


# -- a worker killed while an activity runs ---------------------------------

@dw.workflow("conf_kill_activity")
def kill_activity(ctx, inp):
    return ctx.activity("conf_block_first", inp, start_to_close="2s",
                        retry={"initial_interval": "100ms", "maximum_attempts": 3})


@dw.activity("conf_block_first")
def block_first(ctx, inp):
    if ctx.attempt == 1:
        mark(ctx.workflow_id, "activity:attempt1")
        time.sleep(60)                          # the runner kills the worker here
    return {"attempt": ctx.attempt}


def main():
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(message)s")
    worker = dw.Worker("", queue=os.environ["CONFORMANCE_QUEUE"],
                       lease=float(os.environ.get("CONFORMANCE_LEASE", "2")),
                       poll_interval=1, concurrency=4,
                       name=os.environ.get("CONFORMANCE_WORKER_NAME"))
    worker.run()


if __name__ == "__main__":
    main()
