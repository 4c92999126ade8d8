#!/usr/bin/env python3
"""test/e2e/test_sdk.py: the Python SDK (clients/python) against a real server.

Most tests run dw.Worker threads in this process (their own queues, so the
tests do not see each other's work); the SIGTERM test runs real worker
processes (python3 -m durable_worker ... test_sdk, which imports this file
for its workflows).  Covered: step checkpointing across a failed workflow
task, ctx.transaction exactly once (failure inside it, failure after it, and
a zombie whose lease expired mid-transaction), activity retries, final
activity failure as ActivityError, durable sleep, signals with and without
timeout, child workflows, gather and first, cancellation seen by the
workflow (ctx.cancelled) and by a heartbeating activity, continue-as-new, a
nondeterministic code change rejected by the engine (DU003, a
workflow_task_failed event naming the step), graceful SIGTERM of a
worker process, and results riding on the next poll (no task_complete).

Run as postgres with PG* pointing at a preloaded server:
    /usr/bin/python3 test/e2e/test_sdk.py [test_name ...]
"""

import collections
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "clients", "python"))

import durable_worker as dw  # noqa: E402
from e2e_common import TestFailure as Failure, check, wait_for  # noqa: E402

RUN = "sdk%d" % os.getpid()             # makes workflow ids and queues unique per run


# -- execution counters: in this process (workflow code), and in the
# database (activities of worker processes, and SQL steps)

_calls = collections.Counter()
_calls_lock = threading.Lock()


def bump(*key):
    with _calls_lock:
        _calls[key] += 1
        return _calls[key]


def calls(*key):
    with _calls_lock:
        return _calls[key]


def db_bump(conn, key):
    return conn.execute("INSERT INTO sdk_counts VALUES (%s, 1) ON CONFLICT (key) "
                        "DO UPDATE SET n = sdk_counts.n + 1 RETURNING n", (key,)).fetchone()[0]


def db_count(conn, key):
    row = conn.execute("SELECT n FROM sdk_counts WHERE key = %s", (key,)).fetchone()
    return row[0] if row else 0


# -- workflows and activities (registered globally: worker processes import this file)

@dw.activity()
def sdk_echo(ctx, x):
    return x


@dw.workflow()
def sdk_replaying(ctx, inp):
    seen = [ctx.is_replaying]                   # before the first call
    ctx.activity("sdk_echo", 1)
    seen.append(ctx.is_replaying)               # between the calls
    ctx.activity("sdk_echo", 2)
    seen.append(ctx.is_replaying)               # after the last call
    return seen


@dw.workflow()
def sdk_publish(ctx, inp):
    ctx.publish("stage", "waiting for approval")
    ok = ctx.wait_signal("approve")
    ctx.publish("stage", "approved by %s" % ok["by"])
    return "done"


# versioning: the code of sdk_versioned changes while runs are open.
# v1 is the old code, v2 the change behind a patch marker, v3 the change
# without one (what breaks old runs).  DURABLE_TEST_VERSIONED picks the
# code a worker process or replay command imports.
VERSIONED_CODE = os.environ.get("DURABLE_TEST_VERSIONED", "v2")


def versioned(ctx, inp, code):
    out = [ctx.step("a", lambda: "a")]
    if code == "v3" or (code == "v2" and ctx.patched("add-c")):
        out.append(ctx.step("c", lambda: "c"))
    ctx.wait_signal("go")
    out.append(ctx.step("b", lambda: "b"))
    return out


@dw.workflow()
def sdk_versioned(ctx, inp):
    return versioned(ctx, inp, VERSIONED_CODE)


FRAGILE = {"broken": True}


@dw.activity()
def sdk_fragile(ctx, inp):
    if FRAGILE["broken"]:
        raise dw.NonRetryableError("the card service is down")
    return "charged"


@dw.workflow()
def sdk_resettable(ctx, inp):
    wid = ctx.workflow_id
    reserved = ctx.step("reserve", lambda: bump("reserve", wid) and "reserved")
    return [reserved, ctx.activity("sdk_fragile", None, retry={"maximum_attempts": 1})]


@dw.workflow()
def sdk_cart(ctx, inp):
    # signal handlers: items and a checkout, in whatever order they come
    cart = {"items": [], "paid": False}
    ctx.on_signal("add", lambda item: cart["items"].append(item))
    ctx.on_signal("remove", lambda item: cart["items"].remove(item))
    ctx.on_signal("checkout", lambda _: cart.update(paid=True))
    ctx.wait_condition(lambda: cart["paid"])
    first = ctx.wait_signals(["gift note", "done"])
    return {"items": cart["items"], "then": first}


@dw.workflow()
def sdk_tally(ctx, inp):
    # live queries read the state that signal handlers change
    tally = {"items": []}
    ctx.on_signal("add", lambda item: tally["items"].append(item))
    ctx.on_query("items", lambda: tally["items"])
    ctx.on_query("has", lambda item: item in tally["items"])
    ctx.on_query("broken", lambda: 1 / 0)
    ctx.wait_condition(lambda: "stop" in tally["items"])
    return len(tally["items"])


@dw.workflow()
def sdk_update_cart(ctx, inp):
    # updates change the cart and answer their callers; a validator
    # rejects bad ones; the run waits until an update checks it out
    cart = {"items": [], "checked_out": False}

    def add(item):
        cart["items"].append(item)
        return len(cart["items"])

    def check_add(item):
        if not item:
            raise ValueError("an item needs a name")

    def checkout():
        if not cart["items"]:
            raise ValueError("the cart is empty")
        cart["checked_out"] = True
        return list(cart["items"])

    ctx.on_update("add", add, check_add)
    ctx.on_update("checkout", checkout)
    ctx.on_update("touch", lambda: None)
    ctx.on_query("items", lambda: cart["items"])
    ctx.wait_condition(lambda: cart["checked_out"])
    # a timer: the result comes from a later task, which replays the updates
    ctx.sleep(0.05)
    return cart["items"]


@dw.workflow()
def sdk_update_gather(ctx, inp):
    # an update taken while the code waits on a gather of two timers
    state = {"bumps": 0}

    def bump():
        state["bumps"] += 1
        return state["bumps"]

    ctx.on_update("bump", bump)
    ctx.gather(ctx.start_timer(1.0), ctx.start_timer(1.5))
    return state["bumps"]


@dw.workflow()
def sdk_update_two_waits(ctx, inp):
    # two waits, an update taken at each: on replay each is applied at its
    # own wait, seeing the state it saw then
    state = {"late": False, "seen": []}

    def note():
        state["seen"].append(state["late"])
        return state["late"]

    ctx.on_update("note", note)
    slow, fast = ctx.start_timer(4.0), ctx.start_timer(2.0)
    # the slow one first: once both fired, a replay must still say fast
    i, _ = ctx.first(slow, fast)
    if i == 1:
        state["late"] = True
    slow.result()
    return state["seen"]


@dw.workflow()
def sdk_scored(ctx, inp):
    # sets a declared (typed) search attribute from workflow code
    ctx.upsert_search_attributes({inp["attr"]: inp["score"]})
    return "ok"


@dw.workflow()
def sdk_staged(ctx, inp):
    # the run says where it is through a search attribute clients list by
    ctx.upsert_search_attributes({"Stage": "waiting", "Owner": "ops"})
    ctx.wait_signal("go")
    ctx.upsert_search_attributes({"Stage": "done", "Owner": None})
    return "ok"


@dw.workflow()
def sdk_ponger(ctx, inp):
    msg = ctx.wait_signal("ping")
    ctx.signal_external(msg["reply_to"], "pong", {"n": msg["n"] + 1})
    return msg["n"]


@dw.workflow()
def sdk_pinger(ctx, inp):
    # talk to another workflow, cancel a timer it no longer needs, and
    # stop a third workflow
    ctx.signal_external(inp["target"], "ping", {"reply_to": ctx.workflow_id, "n": 1})
    pong = ctx.wait_signal("pong")
    timer = ctx.start_timer(3600)
    timer.cancel()
    try:
        timer.result()
        timer_state = "fired"
    except dw.CancelledError:
        timer_state = "cancelled"
    try:
        ctx.signal_external(inp["target"] + "-nobody", "ping")
        missing = None
    except dw.ActivityError as e:
        missing = e.type
    ctx.cancel_external(inp["victim"], "the pinger is done")
    return {"pong": pong, "timer": timer_state, "missing": missing}


@dw.activity()
def sdk_approve_later(ctx, order):
    # hand the activity to someone else: they complete it by (workflow, seq)
    ctx.conn.execute("INSERT INTO sdk_async VALUES (%s, %s)", (ctx.workflow_id, ctx.seq))
    return dw.ASYNC


@dw.workflow()
def sdk_async(ctx, inp):
    return {"approval": ctx.activity("sdk_approve_later", inp)}


@dw.workflow()
def sdk_square(ctx, inp):
    return ctx.step("square", lambda: inp["n"] * inp["n"])


@dw.workflow()
def sdk_fair_act(ctx, inp):
    # an activity with its own fairness key and weight
    return ctx.activity("sdk_echo", 1, queue=inp["queue"], fairness_key="bulk", fairness_weight=0.5)


@dw.activity()
def sdk_huge(ctx, inp):
    bump("huge")
    return "x" * (3 * 1024 * 1024)             # over durable.max_payload_size (2 MB)


@dw.workflow()
def sdk_huge_result(ctx, inp):
    try:
        ctx.activity("sdk_huge", None)
        return "no error"
    except dw.ActivityError as e:
        return e.type


@dw.workflow()
def sdk_taken_child(ctx, inp):
    return ctx.child("sdk_square", {"n": 2}, workflow_id=inp["id"])


@dw.workflow()
def sdk_fire_and_forget(ctx, inp):
    # returns right after calls it does not await
    ctx.start_activity("sdk_echo", "sent", queue=inp["queue"])
    ctx.start_signal_external(inp["target"], "note", "hello")
    return "returned"


@dw.workflow()
def sdk_checkpoint(ctx, inp):
    wid = ctx.workflow_id
    a = ctx.step("one", lambda: bump(wid, "one") and "A")

    def two():
        if bump(wid, "two") == 1:
            raise RuntimeError("transient failure in step two")
        return "B"
    b = ctx.step("two", two)
    c = ctx.activity("sdk_echo", "C")
    d = ctx.step("three", lambda: bump(wid, "three") and "D")
    return [a, b, c, d]


@dw.workflow()
def sdk_tx(ctx, inp):
    wid = ctx.workflow_id

    def pay(conn):
        conn.execute("INSERT INTO sdk_tx VALUES (%s, %s)", (wid, ctx.attempt))
        n = bump(wid, "pay")
        if n == 1:
            raise RuntimeError("failure inside the transaction")
        return n
    r = ctx.transaction("pay", pay)
    if bump(wid, "after") == 1:
        raise RuntimeError("failure after the transaction committed")
    return r


@dw.workflow()
def sdk_tx_zombie(ctx, inp):
    wid = ctx.workflow_id

    def pay(conn):
        conn.execute("INSERT INTO sdk_tx VALUES (%s, %s)", (wid, ctx.attempt))
        if bump(wid, "pay") == 1:
            time.sleep(inp["sleep"])       # the lease expires meanwhile
        return ctx.attempt
    return ctx.transaction("pay", pay)


@dw.activity()
def sdk_flaky(ctx, inp):
    bump(inp["wid"], "flaky")
    if ctx.attempt < 3:
        raise ValueError("attempt %d fails" % ctx.attempt)
    return {"attempt": ctx.attempt}


@dw.workflow()
def sdk_retry(ctx, inp):
    return ctx.activity("sdk_flaky", {"wid": ctx.workflow_id},
                        retry={"initial_interval": "100ms", "backoff_coefficient": 1.0})


@dw.activity()
def sdk_always_fails(ctx, inp):
    bump(inp["wid"], "always_fails")
    raise ValueError("no luck")


@dw.activity()
def sdk_fatal(ctx, inp):
    bump(inp["wid"], "fatal")
    raise dw.NonRetryableError("fatal, do not retry")


@dw.workflow()
def sdk_final_failure(ctx, inp):
    wid = ctx.workflow_id
    out = {}
    try:
        ctx.activity("sdk_always_fails", {"wid": wid},
                     retry={"initial_interval": "100ms", "maximum_attempts": 2})
    except dw.ActivityError as e:
        out["retried"] = {"type": e.type, "message": str(e), "class": type(e).__name__}
    try:
        ctx.activity("sdk_fatal", {"wid": wid},
                     retry={"initial_interval": "100ms", "maximum_attempts": 5})
    except dw.ActivityError as e:
        out["fatal"] = {"type": e.type, "message": str(e)}
    if inp.get("uncaught"):
        ctx.activity("sdk_always_fails", {"wid": wid}, retry={"maximum_attempts": 1})
    return out


@dw.workflow()
def sdk_sleep(ctx, inp):
    ctx.sleep(inp["seconds"])
    return "woke"


@dw.workflow()
def sdk_signal(ctx, inp):
    if inp.get("sleep_first"):
        ctx.sleep("500ms")
    try:
        payload = ctx.wait_signal("go", timeout=inp.get("timeout"))
    except dw.DurableTimeout as e:
        return {"timed_out": True, "class": type(e).__name__, "timeout_type": e.error.get("timeout_type")}
    return {"payload": payload}


@dw.workflow()
def sdk_child(ctx, inp):
    if inp.get("fail"):
        raise dw.ApplicationError("the child says no", type="ChildRefused")
    return ctx.step("double", lambda: inp["x"] * 2)


@dw.workflow()
def sdk_parent(ctx, inp):
    doubled = ctx.child("sdk_child", {"x": 21})
    named = ctx.child("sdk_child", {"x": 5}, workflow_id=ctx.workflow_id + "-kid")
    try:
        ctx.child("sdk_child", {"fail": True})
        err = None
    except dw.ActivityError as e:
        err = {"type": e.type, "message": str(e)}
    return {"doubled": doubled, "named": named, "child_error": err}


@dw.workflow()
def sdk_gather_first(ctx, inp):
    handles = [ctx.start_activity("sdk_echo", i) for i in range(5)]
    gathered = ctx.gather(*handles)
    timer = ctx.start_timer("1h")
    poke = ctx.start_wait_signal("poke")
    index, value = ctx.first(timer, poke)
    return {"gathered": gathered, "first": index, "value": value}


@dw.activity()
def sdk_wait_cancel(ctx, inp):
    for _ in range(300):
        if ctx.heartbeat({"waiting": True}):
            raise dw.CancelledError({"type": "cancelled", "message": "activity saw the cancel request"})
        time.sleep(0.1)
    return "never cancelled"


@dw.activity()
def sdk_long(ctx, inp):
    time.sleep(inp["seconds"])              # no heartbeat() calls of its own
    return ctx.attempt


@dw.workflow()
def sdk_auto_heartbeat(ctx, inp):
    return ctx.activity("sdk_long", {"seconds": 3}, heartbeat="1s", start_to_close="60s",
                        retry={"maximum_attempts": 1})


@dw.workflow()
def sdk_cancel_activity(ctx, inp):
    try:
        ctx.activity("sdk_wait_cancel", None, heartbeat="10s", start_to_close="60s")
    except dw.CancelledError:
        ctx.step("cleanup", lambda: {"cancelled_seen": ctx.cancelled})
        raise
    return "not cancelled"


@dw.workflow()
def sdk_cancel_sleep(ctx, inp):
    try:
        ctx.sleep("1h")
    except dw.CancelledError:
        return {"cleaned_up": True, "cancelled": ctx.cancelled}
    return {"cleaned_up": False}


@dw.workflow()
def sdk_counter(ctx, inp):
    n = inp["n"]
    ctx.step("tick", lambda: n)
    if n < 3:
        ctx.continue_as_new({"n": n + 1})
    return {"final": n, "run_input": ctx.input}


def _evolving_v1(ctx, inp):
    ctx.step("prepare", lambda: "ready")
    r = ctx.activity("sdk_gate", None, queue=inp["gate_queue"])
    return {"version": 1, "gate": r}


def _evolving_v2(ctx, inp):                 # changed the activity of step 2
    ctx.step("prepare", lambda: "ready")
    r = ctx.activity("sdk_gate_v2", None, queue=inp["gate_queue"])
    return {"version": 2, "gate": r}


def _evolving_v3(ctx, inp):                 # renamed the local step 1
    ctx.step("prepare_v3", lambda: "ready")
    r = ctx.activity("sdk_gate", None, queue=inp["gate_queue"])
    return {"version": 3, "gate": r}


@dw.activity()
def sdk_gate(ctx, inp):
    return "opened"


@dw.activity()
def sdk_slow(ctx, inp):
    """Counts itself in the database; sleeps inp["seconds"] the first time only."""
    n = db_bump(ctx.conn, inp["key"])
    if n == 1:
        time.sleep(inp["seconds"])
    return n


@dw.workflow()
def sdk_term(ctx, inp):
    n = ctx.activity("sdk_slow", inp, start_to_close="5m")
    return {"executions_seen": n}


# -- helpers for the tests

class InProcess:
    """A dw.Worker in a thread, stopped at the end of the with block."""

    def __init__(self, queue, **kw):
        kw.setdefault("poll_interval", 0.5)
        kw.setdefault("grace", 2)
        self.worker = dw.Worker("", queue=queue, **kw)
        self.thread = threading.Thread(target=self.worker.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self.worker

    def __exit__(self, *exc):
        self.worker.stop()
        self.thread.join(15)
        return False


def journal(conn, wid):
    """The steps of the latest run of a workflow, as dicts."""
    cur = conn.execute("SELECT seq, kind, name, status, result, error, attempt, scheduled_at, resolved_at "
                       "  FROM durable.journal WHERE run_id = (SELECT max(run_id) FROM durable.workflows "
                       "                                        WHERE workflow_id = %s) "
                       " ORDER BY seq", (wid,))
    cols = [c.name for c in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def events(client, wid, event_type):
    return [e for e in client.history(wid) if e["event_type"] == event_type]


def pending_kinds(client, wid):
    return [s["kind"] for s in client.describe(wid)["pending_steps"]]


# -- the tests

def test_step_checkpointing(client):
    q = RUN + "-ckpt"
    wid = q + "-1"
    with InProcess(q):
        client.start("sdk_checkpoint", None, workflow_id=wid, queue=q)
        res = client.result(wid, wait=30)
    check(res == ["A", "B", "C", "D"], "result combines every step: %s" % res)
    check(calls(wid, "one") == 1, "step one ran once although the workflow ran 4 times")
    check(calls(wid, "two") == 2, "step two ran twice: failed once (not checkpointed), then succeeded")
    check(calls(wid, "three") == 1, "step three ran once")
    j = [(r["seq"], r["kind"], r["name"], r["status"]) for r in journal(client.conn, wid)]
    check(j == [(1, "local", "one", "completed"), (2, "local", "two", "completed"),
                (3, "activity", "sdk_echo", "completed"), (4, "local", "three", "completed")],
          "journal holds the four steps in order: %s" % j)
    failed = events(client, wid, "workflow_task_failed")
    check(len(failed) == 1 and "transient failure" in str(failed[0]["details"]),
          "history shows the failed workflow task with its error")


def test_transaction_exactly_once(client):
    q = RUN + "-tx"
    wid = q + "-1"
    with InProcess(q):
        client.start("sdk_tx", None, workflow_id=wid, queue=q)
        res = client.result(wid, wait=30)
    rows = client.conn.execute("SELECT attempt FROM sdk_tx WHERE workflow_id = %s", (wid,)).fetchall()
    check(res == 2, "the run returns the committed transaction's result (%s)" % res)
    check(calls(wid, "pay") == 2, "the transaction body ran twice (the first one failed inside)")
    check(len(rows) == 1, "its SQL write is in the table exactly once (%d rows)" % len(rows))
    check(calls(wid, "after") == 2, "the failure after the commit made the workflow task run again")
    check(len(events(client, wid, "workflow_task_failed")) == 2, "two failed workflow tasks in history")


def test_transaction_zombie(client):
    """Worker slot A holds the task in ctx.transaction past its lease; slot B
    takes the task over and commits; A's step_record is rejected (DU004) and
    its transaction, with its SQL write, rolls back."""
    q = RUN + "-txz"
    wid = q + "-1"
    with InProcess(q, concurrency=2, lease=1, grace=5):
        client.start("sdk_tx_zombie", {"sleep": 3}, workflow_id=wid, queue=q)
        res = client.result(wid, wait=30)
        # the zombie's transaction stays open until its sleep ends
        wait_for("the zombie transaction to end", lambda: calls(wid, "pay") >= 2 and
                 not client.conn.execute("SELECT 1 FROM pg_stat_activity WHERE state = 'idle in transaction' "
                                         " AND query LIKE 'INSERT INTO sdk_tx%'").fetchone(),
                 timeout=15)
    rows = client.conn.execute("SELECT attempt FROM sdk_tx WHERE workflow_id = %s", (wid,)).fetchall()
    check(calls(wid, "pay") == 2, "the transaction body ran in both slots")
    check(res == 2, "the run's result is the second attempt's (%s)" % res)
    check([r[0] for r in rows] == [2], "only the second attempt's SQL write committed: %s" % rows)
    check(events(client, wid, "workflow_task_timed_out") != [],
          "history shows the first slot's lease expiring (workflow_task_timed_out)")


def test_activity_retries(client):
    q = RUN + "-retry"
    wid = q + "-1"
    with InProcess(q):
        client.start("sdk_retry", None, workflow_id=wid, queue=q)
        res = client.result(wid, wait=30)
    check(res == {"attempt": 3}, "the activity succeeded on attempt 3: %s" % res)
    check(calls(wid, "flaky") == 3, "it ran three times")
    failed = events(client, wid, "activity_attempt_failed")
    check(len(failed) == 2 and all("retry_in_ms" in e["details"] for e in failed),
          "history has two retried failures")
    j = journal(client.conn, wid)
    check(j[0]["attempt"] == 3 and j[0]["status"] == "completed", "the journal entry records attempt 3")


def test_activity_final_failure(client):
    q = RUN + "-fail"
    caught, uncaught = q + "-caught", q + "-uncaught"
    with InProcess(q):
        client.start("sdk_final_failure", {}, workflow_id=caught, queue=q)
        client.start("sdk_final_failure", {"uncaught": True}, workflow_id=uncaught, queue=q)
        res = client.result(caught, wait=30)
        wait_for("the uncaught run to close", lambda: client.status(uncaught) != "running")
    check(res["retried"] == {"type": "ValueError", "message": "no luck", "class": "ActivityError"},
          "a failure after maximum_attempts reaches the workflow as ActivityError: %s" % res["retried"])
    check(calls(caught, "always_fails") == 2, "it was tried twice (maximum_attempts 2)")
    check(res["fatal"]["type"] == "NonRetryableError" and calls(caught, "fatal") == 1,
          "NonRetryableError is not retried: %s" % res["fatal"])
    check(client.status(uncaught) == "failed", "an uncaught ActivityError fails the run")
    try:
        client.result(uncaught)
        check(False, "result of a failed run raises")
    except dw.WorkflowFailed as e:
        check("no luck" in str(e), "WorkflowFailed carries the error: %s" % e)


def test_sleep(client):
    q = RUN + "-sleep"
    wid = q + "-1"
    with InProcess(q):
        client.start("sdk_sleep", {"seconds": 1}, workflow_id=wid, queue=q)
        check(client.result(wid, wait=30) == "woke", "the workflow woke up")
    j = journal(client.conn, wid)
    check(j[0]["kind"] == "sleep" and j[0]["status"] == "completed", "the journal holds the timer")
    slept = (j[0]["resolved_at"] - j[0]["scheduled_at"]).total_seconds()
    check(slept >= 1.0, "the timer fired no earlier than 1 s after it was set (%.2f s)" % slept)


def test_signals(client):
    q = RUN + "-sig"
    waiting, buffered, timeout, sws = (q + s for s in ("-waiting", "-buffered", "-timeout", "-sws"))
    with InProcess(q):
        client.start("sdk_signal", {}, workflow_id=waiting, queue=q)
        client.start("sdk_signal", {"sleep_first": True}, workflow_id=buffered, queue=q)
        client.start("sdk_signal", {"timeout": "1s"}, workflow_id=timeout, queue=q)
        client.signal(buffered, "go", {"v": "early"})           # before the workflow waits
        wait_for("the workflow to wait for its signal", lambda: pending_kinds(client, waiting) == ["signal"])
        client.signal(waiting, "go", {"v": 42})
        client.signal_with_start("sdk_signal", {}, sws, "go", {"v": "sws"}, queue=q)
        r1 = client.result(waiting, wait=30)
        r2 = client.result(buffered, wait=30)
        r3 = client.result(timeout, wait=30)
        r4 = client.result(sws, wait=30)
    check(r1 == {"payload": {"v": 42}}, "a waiting workflow gets the signal's payload: %s" % r1)
    check(r2 == {"payload": {"v": "early"}}, "a signal sent before the wait is buffered: %s" % r2)
    check(r3 == {"timed_out": True, "class": "DurableTimeout", "timeout_type": "signal"},
          "a wait with a timeout raises DurableTimeout: %s" % r3)
    check(r4 == {"payload": {"v": "sws"}}, "signal_with_start starts the run and delivers: %s" % r4)


def test_child_workflows(client):
    q = RUN + "-child"
    wid = q + "-parent"
    with InProcess(q):
        client.start("sdk_parent", None, workflow_id=wid, queue=q)
        res = client.result(wid, wait=30)
    check(res["doubled"] == 42 and res["named"] == 10, "children's results come back: %s" % res)
    check(res["child_error"] is not None and res["child_error"]["type"] == "ChildRefused"
          and "says no" in res["child_error"]["message"],
          "a failed child surfaces as ActivityError with its error: %s" % res["child_error"])
    kids = client.conn.execute(
        "SELECT c.workflow_id, c.status FROM durable.workflows c JOIN durable.workflows p "
        "    ON c.parent_run_id = p.run_id WHERE p.workflow_id = %s ORDER BY c.run_id", (wid,)).fetchall()
    check([k[1] for k in kids] == ["completed", "completed", "failed"] and kids[1][0] == wid + "-kid",
          "three child runs with their parent recorded: %s" % kids)


def test_gather_first(client):
    q = RUN + "-gather"
    wid = q + "-1"
    with InProcess(q):
        client.start("sdk_gather_first", None, workflow_id=wid, queue=q)
        wait_for("the signal wait", lambda: "signal" in pending_kinds(client, wid))
        client.signal(wid, "poke", "poked")
        res = client.result(wid, wait=30)
    check(res == {"gathered": [0, 1, 2, 3, 4], "first": 1, "value": "poked"},
          "gather returns every result in order and first the signal: %s" % res)
    timer = [r for r in journal(client.conn, wid) if r["kind"] == "sleep"]
    check(len(timer) == 1 and timer[0]["status"] == "cancelled",
          "the losing timer was cancelled when the run closed")


def test_cancellation(client):
    q = RUN + "-cancel"
    act, slp = q + "-activity", q + "-sleep"
    with InProcess(q):
        client.start("sdk_cancel_activity", None, workflow_id=act, queue=q)
        client.start("sdk_cancel_sleep", None, workflow_id=slp, queue=q)
        wait_for("the activity to run", lambda: client.conn.execute(
            "SELECT 1 FROM durable.task_list WHERE workflow_id = %s AND kind = 'activity' "
            "   AND state = 'leased'", (act,)).fetchone())
        wait_for("the timer", lambda: pending_kinds(client, slp) == ["sleep"])
        client.cancel(act, "test cancels the activity")
        client.cancel(slp, "test cancels the sleep")
        wait_for("both runs to close", lambda: client.status(act) != "running" and
                 client.status(slp) != "running")
    check(client.status(act) == "cancelled", "the run whose activity was cancelled closed as cancelled")
    j = {r["name"]: r for r in journal(client.conn, act)}
    check(j["sdk_wait_cancel"]["status"] == "failed" and j["sdk_wait_cancel"]["error"]["type"] == "cancelled"
          and j["sdk_wait_cancel"]["attempt"] == 1,
          "the activity saw the cancel through its heartbeat and ended without retry")
    check(j["cleanup"]["result"] == {"cancelled_seen": True},
          "the workflow's cleanup step ran and saw ctx.cancelled")
    check(events(client, act, "cancel_requested") != [], "history records the cancel request")
    check(client.status(slp) == "completed" and client.result(slp) == {"cleaned_up": True, "cancelled": True},
          "a cancelled sleep raises CancelledError; the workflow may finish its own way")


def test_auto_heartbeat(client):
    """A worker with a 30 s lease runs a 3 s activity whose heartbeat timeout
    is 1 s: the worker must heartbeat it often enough on its own."""
    q = RUN + "-hb"
    wid = q + "-1"
    with InProcess(q, lease=30):
        client.start("sdk_auto_heartbeat", None, workflow_id=wid, queue=q)
        wait_for("the run to close", lambda: client.status(wid) != "running")
    check(client.status(wid) == "completed" and client.result(wid) == 1,
          "the activity finished on its first attempt (no heartbeat timeout)")
    check(events(client, wid, "activity_attempt_timed_out") == [], "no activity_attempt_timed_out event")


def test_continue_as_new(client):
    q = RUN + "-can"
    wid = q + "-1"
    with InProcess(q):
        client.start("sdk_counter", {"n": 0}, workflow_id=wid, queue=q)
        wait_for("the last run to complete", lambda: client.conn.execute(
            "SELECT 1 FROM durable.workflows WHERE workflow_id = %s AND status = 'completed'",
            (wid,)).fetchone())
    runs = client.conn.execute("SELECT status, input FROM durable.workflows WHERE workflow_id = %s "
                               " ORDER BY run_id", (wid,)).fetchall()
    check([r[0] for r in runs] == ["continued_as_new"] * 3 + ["completed"],
          "four runs: three continued as new, the last completed")
    check([r[1] for r in runs] == [{"n": i} for i in range(4)], "each run got the input handed on")
    check(client.result(wid) == {"final": 3, "run_input": {"n": 3}}, "the result is the last run's")
    ticks = client.conn.execute("SELECT result FROM durable.journal WHERE workflow_id = %s "
                                " ORDER BY run_id, seq", (wid,)).fetchall()
    check([t[0] for t in ticks] == [0, 1, 2, 3], "each run started with a fresh journal: %s" % ticks)


def test_nondeterminism(client):
    q, gate = RUN + "-nd", RUN + "-nd-gate"
    wid = q + "-1"
    v1 = {"sdk_evolving": _evolving_v1}
    acts = {"sdk_gate": sdk_gate, "sdk_gate_v2": sdk_gate}
    with InProcess(q, workflows=v1, activities={}):
        client.start("sdk_evolving", {"gate_queue": gate}, workflow_id=wid, queue=q)
        wait_for("the run to wait for its gate activity", lambda: pending_kinds(client, wid) == ["activity"])

    # deploy a changed workflow: step 2 is now another activity
    with InProcess(q, workflows={"sdk_evolving": _evolving_v2}, activities={}):
        with InProcess(gate, workflows={}, activities=acts):
            failed = wait_for("a failed workflow task", lambda: events(client, wid, "workflow_task_failed"))
    err = failed[0]["details"]["error"]
    print("  workflow_task_failed: %s" % err)
    check(err.get("sqlstate") == "DU003", "the engine rejected the changed call as nondeterminism (DU003)")
    check("step 2" in err["message"] and "sdk_gate_v2" in err["message"] and '"sdk_gate"' in err["message"],
          "the event names the step and both calls")
    check(client.status(wid) == "running", "the run stays open: the workflow task is retried")
    j = [(r["seq"], r["kind"], r["name"], r["status"]) for r in journal(client.conn, wid)]
    check(j == [(1, "local", "prepare", "completed"), (2, "activity", "sdk_gate", "completed")],
          "the journal is unchanged: %s" % j)

    # a renamed local step is caught the same way (step_record)
    def v3_failures():
        return [e["details"]["error"] for e in events(client, wid, "workflow_task_failed")
                if "prepare_v3" in e["details"]["error"].get("message", "")]
    with InProcess(q, workflows={"sdk_evolving": _evolving_v3}, activities={}):
        err = wait_for("a failed workflow task of the renamed step", v3_failures, timeout=20)[0]
    check(err.get("sqlstate") == "DU003" and "step 1" in err["message"],
          "a renamed local step is DU003 too: %s" % err["message"])

    # rolling back to the original code lets the run finish
    with InProcess(q, workflows=v1, activities={}):
        res = client.result(wid, wait=30)
    check(res == {"version": 1, "gate": "opened"}, "the original code completes the run: %s" % res)


def _worker_process(logdir, name, queue, *args):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(REPO, "clients", "python"), HERE])
    log = open(os.path.join(logdir, name + ".log"), "w")
    p = subprocess.Popen([sys.executable, "-m", "durable_worker", "--queue", queue, "--name", name,
                          "--poll-interval", "1", *args, "test_sdk"],
                         stdout=log, stderr=subprocess.STDOUT, env=env, cwd=HERE)
    p.logfile = log.name
    return p


def _log(p):
    with open(p.logfile) as f:
        return f.read()


def test_sigterm(client):
    """SIGTERM: the worker stops polling, lets running tasks finish (or,
    past --grace, hands them back) and exits; nothing is lost, nothing
    waits for a lease to expire (leases here are 60 s)."""
    logdir = tempfile.mkdtemp(prefix="sdk-sigterm-")
    procs = []
    try:
        for part, grace, seconds in (("finish", None, 1.5), ("release", 0.5, 60)):
            q = "%s-term-%s" % (RUN, part)
            ids = ["%s-%d" % (q, i) for i in range(4)]
            a = _worker_process(logdir, q + "-A", q, "--lease", "60", "--concurrency", "4",
                                *(["--grace", str(grace)] if grace else []))
            procs.append(a)
            for wid in ids:
                client.start("sdk_term", {"key": wid, "seconds": seconds}, workflow_id=wid, queue=q)
            wait_for("worker A to run all four activities", lambda: client.conn.execute(
                "SELECT count(*) FROM durable.task_list WHERE queue = %s AND kind = 'activity' "
                "   AND state = 'leased'", (q,)).fetchone()[0] == 4, timeout=20)
            a.send_signal(signal.SIGTERM)
            try:
                rc = a.wait(timeout=20)
            except subprocess.TimeoutExpired:
                rc = None
            check(rc == 0, "[%s] worker A exited after SIGTERM (rc %s)" % (part, rc))
            check("stopping" in _log(a), "[%s] worker A logged its orderly stop" % part)
            b = _worker_process(logdir, q + "-B", q, "--lease", "60", "--concurrency", "4")
            procs.append(b)
            results = [client.result(wid, wait=30) for wid in ids]
            check(all(r is not None for r in results),
                  "[%s] all four workflows completed, well before a 60 s lease could expire" % part)
            counts = [db_count(client.conn, wid) for wid in ids]
            released = sum(len(events(client, wid, "task_released")) for wid in ids)
            if part == "finish":
                check(counts == [1] * 4 and released == 0,
                      "[finish] each activity ran once and finished on worker A (%s)" % counts)
            else:
                check(counts == [2] * 4 and released == 4,
                      "[release] past the grace, worker A handed the 4 activities back (task_released) "
                      "and worker B ran them again (%s)" % counts)
            b.send_signal(signal.SIGTERM)
            check(b.wait(timeout=20) == 0, "[%s] worker B exited after SIGTERM too" % part)
    except Exception:
        for p in procs:
            print("----- %s -----\n%s" % (p.logfile, _log(p)))
        raise
    else:
        shutil.rmtree(logdir, ignore_errors=True)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


@dw.workflow()
def sdk_one_step(ctx, inp):
    return {"echo": inp}


@dw.activity()
def sdk_double(ctx, inp):
    return inp * 2


@dw.workflow()
def sdk_one_activity(ctx, inp):
    return ctx.activity("sdk_double", inp)


def test_finish_rides_on_poll(client):
    """Results ride on the next poll (done_tokens): the worker never calls
    task_complete, and every run completes with its own result.  Counted
    with pg_stat_user_functions (track_functions = all on the worker's
    connections, flushed when they close)."""
    q = RUN + "-ride"
    n = 40
    old = os.environ.get("PGOPTIONS")
    os.environ["PGOPTIONS"] = ((old or "") + " -c track_functions=all").strip()

    def fn_calls():
        client.conn.execute("SELECT pg_stat_clear_snapshot()")
        rows = client.conn.execute(
            "SELECT funcname, calls FROM pg_stat_user_functions WHERE schemaname = 'durable'"
            "   AND funcname IN ('task_complete', 'task_poll', 'task_complete_many')").fetchall()
        return collections.Counter(dict(rows))

    try:
        before = fn_calls()
        for i in range(n):
            client.start("sdk_one_step", i, "%s-%d" % (q, i), queue=q)
        for i in range(n // 4):
            client.start("sdk_one_activity", i, "%s-act-%d" % (q, i), queue=q)
        with InProcess(q, concurrency=4):
            wait_for("every run completed", lambda: client.conn.execute(
                "SELECT count(*) FROM durable.workflows WHERE queue = %s AND status = 'completed'",
                (q,)).fetchone()[0] == n + n // 4)
        results = dict(client.conn.execute(
            "SELECT workflow_id, output FROM durable.workflows WHERE queue = %s", (q,)).fetchall())
        check(all(results["%s-%d" % (q, i)] == {"echo": i} for i in range(n)) and
              all(results["%s-act-%d" % (q, i)] == i * 2 for i in range(n // 4)),
              "every run completed with its own result")
        # the worker's backends flush their function statistics as they exit
        after = wait_for("the worker's statistics", lambda: (
            lambda c: c if c["task_poll"] > before["task_poll"] else None)(fn_calls()), timeout=10)
    finally:
        if old is None:
            os.environ.pop("PGOPTIONS", None)
        else:
            os.environ["PGOPTIONS"] = old
    completes = after["task_complete"] - before["task_complete"]
    polls = after["task_poll"] - before["task_poll"]
    check(completes == 0, "no separate task_complete call: the %d results (%d one-step runs, "
          "%d activities, %d runs after them) rode on %d polls"
          % (n + 2 * (n // 4), n, n // 4, n // 4, polls))


def test_is_replaying(client):
    """ctx.is_replaying: true while re-running calls of earlier tasks."""
    q = RUN + "-replaying"
    wid = q + "-1"
    with InProcess(q):
        client.start("sdk_replaying", None, workflow_id=wid, queue=q)
        res = client.result(wid, wait=30)
    # third task: both activity calls are replayed, the code after the
    # last one runs for the first time
    check(res == [True, True, False], "is_replaying at each point of the last task: %s" % res)


def test_async_completion(client):
    """An activity returns dw.ASYNC; the client completes it later by id."""
    q = RUN + "-async"
    wid = q + "-1"
    with InProcess(q):
        client.start("sdk_async", {"order": 7}, workflow_id=wid, queue=q)
        row = wait_for("the activity to leave itself open", lambda: client.conn.execute(
            "SELECT workflow_id, seq FROM sdk_async WHERE workflow_id = %s", (wid,)).fetchone())
        time.sleep(0.5)
        check(client.result(wid) is None, "the run waits while the activity is open")
        client.complete_activity(row[0], row[1], {"approved_by": "ops"})
        res = client.result(wid, wait=30)
    check(res == {"approval": {"approved_by": "ops"}}, "the run finished with the async result: %s" % res)


def test_publish(client):
    """ctx.publish: clients read a run's state with SQL while it waits."""
    q = RUN + "-publish"
    wid = q + "-1"
    with InProcess(q):
        client.start("sdk_publish", None, workflow_id=wid, queue=q)
        wait_for("the run to publish its stage", lambda: client.published(wid).get("stage"))
    # no worker runs now: the published state is still there
    check(client.published(wid) == {"stage": "waiting for approval"},
          "published state read with no worker alive: %s" % client.published(wid))
    client.signal(wid, "approve", {"by": "ops"})
    with InProcess(q):
        res = client.result(wid, wait=30)
    check(res == "done" and client.published(wid) == {"stage": "approved by ops"},
          "the later value replaced the first: %s" % client.published(wid))


def test_pause(client):
    """Client.pause holds a running workflow with a live worker; unpause lets it go on."""
    q = RUN + "-pause"
    wid = q + "-1"
    with InProcess(q):
        client.start("sdk_publish", None, workflow_id=wid, queue=q)
        wait_for("the run to wait for approval", lambda: client.published(wid).get("stage"))
        check(client.pause(wid, "hold for review") is True, "pause says it paused the run")
        check(client.pause(wid) is False, "pausing again says nothing changed")
        client.signal(wid, "approve", {"by": "ops"})
        time.sleep(1.5)
        check(client.result(wid) is None and client.published(wid) == {"stage": "waiting for approval"},
              "a paused run does not run for a signal while a worker polls its queue")
        check(client.unpause(wid, "reviewed") is True, "unpause says it let the run go on")
        res = client.result(wid, wait=30)
    check(res == "done" and client.published(wid) == {"stage": "approved by ops"},
          "after unpause the run saw the signal and finished: %s" % res)
    events = [r[0] for r in client.conn.execute(
        "SELECT event_type FROM durable.wf_history(%s) WHERE event_type LIKE 'workflow_%%paused'"
        " ORDER BY event_time", (wid,))]
    check(events == ["workflow_paused", "workflow_unpaused"], "history records both: %s" % events)


def test_messages(client):
    """Workflow code signals and cancels other workflows and cancels its own timer."""
    q = RUN + "-msg"
    with InProcess(q):
        client.start("sdk_publish", None, workflow_id=q + "-victim", queue=q)
        client.start("sdk_ponger", None, workflow_id=q + "-ponger", queue=q)
        client.start("sdk_pinger", {"target": q + "-ponger", "victim": q + "-victim"},
                     workflow_id=q + "-pinger", queue=q)
        res = client.result(q + "-pinger", wait=30)
        ponged = client.result(q + "-ponger", wait=30)
        victim = wait_for("the victim to close", lambda: client.status(q + "-victim") != "running" and
                          client.status(q + "-victim"))
    check(res == {"pong": {"n": 2}, "timer": "cancelled", "missing": "workflow_not_found"},
          "the pinger got its pong, cancelled its timer and saw the missing target: %s" % res)
    check(ponged == 1, "the ponger got the ping from workflow code: %s" % ponged)
    check(victim == "cancelled", "cancel_external closed the victim as cancelled: %s" % victim)
    n = client.conn.execute("SELECT count(*) FROM durable.signals g JOIN durable.runs r USING (run_id)"
                            " WHERE r.workflow_id = %s", (q + "-ponger",)).fetchone()[0]
    check(n == 1, "replays of the pinger signalled the ponger once: %d" % n)


def test_versioning(client):
    """A patch marker keeps an old run on its code path; the replayer finds what breaks."""
    global VERSIONED_CODE
    q = RUN + "-ver"
    old, new = q + "-old", q + "-new"
    with InProcess(q):
        VERSIONED_CODE = "v1"
        client.start("sdk_versioned", None, workflow_id=old, queue=q)
        wait_for("the old run to wait", lambda: len(journal(client.conn, old)) == 2)
        VERSIONED_CODE = "v2"
        client.start("sdk_versioned", None, workflow_id=new, queue=q)
        wait_for("the new run to wait", lambda: len(journal(client.conn, new)) == 4)
        steps = [(e["kind"], e["name"]) for e in journal(client.conn, new)]
        check(steps[1] == ("local", "patch:add-c"), "the new run recorded the marker: %s" % steps)
        # which open runs still take the old path: no marker (README query)
        drain = [r[0] for r in client.conn.execute(
            "SELECT w.workflow_id FROM durable.workflows w WHERE w.workflow_type = 'sdk_versioned'"
            "   AND w.status = 'running' AND w.workflow_id LIKE %s AND NOT EXISTS ("
            "     SELECT FROM durable.journal j WHERE j.run_id = w.run_id AND j.name = 'patch:add-c')",
            (q + "%",))]
        check(drain == [old], "the safe-drain query names the old run only: %s" % drain)
        # the replayer: v2 replays both runs, v3 breaks the old one
        mine = lambda rs: {w: p for w, _, p in rs if w.startswith(q)}
        ok = mine(dw.replay(client.conn, "sdk_versioned", status="running"))
        check(ok == {old: None, new: None}, "v2 replays both open runs: %s" % ok)
        bad = mine(dw.replay(client.conn, "sdk_versioned", lambda c, i: versioned(c, i, "v3"),
                             status="running"))
        check(isinstance(bad[old], dw.Nondeterminism) and bad[old].seq == 2 and bad[new] is not None,
              "v3 is nondeterministic for both runs: %s" % {k: str(v) for k, v in bad.items()})
        env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "clients", "python"))
        for code, rc in (("v2", 0), ("v3", 1)):
            env["DURABLE_TEST_VERSIONED"] = code
            p = subprocess.run([sys.executable, "-m", "durable_worker", "replay", "--type",
                                "sdk_versioned", "--status", "running", "test_sdk"],
                               cwd=HERE, env=env, capture_output=True, text=True, timeout=60)
            check(p.returncode == rc, "the replay command with %s exits %d: %s" % (
                code, rc, (p.stdout + p.stderr).strip().splitlines()[-1:]))
        # both runs finish, each on its own path
        client.signal(old, "go")
        client.signal(new, "go")
        res = (client.result(old, wait=30), client.result(new, wait=30))
    check(res == (["a", "b"], ["a", "c", "b"]), "the old run kept the old path: %s" % (res,))


def test_reset(client):
    """A failed run is reset to the failed step once the cause is fixed; a fork copies it."""
    q = RUN + "-reset"
    wid = q + "-1"
    with InProcess(q):
        FRAGILE["broken"] = True
        client.start("sdk_resettable", None, workflow_id=wid, queue=q)
        wait_for("the run to fail", lambda: client.status(wid) == "failed")
        FRAGILE["broken"] = False
        new_run = client.reset(wid, 2, "the card service is back")
        res = client.result(wid, wait=30)
        copy = client.fork(wid, 2, wid + "-copy")
        res_copy = client.result(copy, wait=30)
    check(res == ["reserved", "charged"], "the reset run finished from step 2: %s" % res)
    check(calls("reserve", wid) == 1, "the kept step ran once: %d" % calls("reserve", wid))
    check(isinstance(new_run, int) and res_copy == res and calls("reserve", copy) == 0,
          "the fork finished with the kept step's result: %s" % res_copy)
    statuses = [r[0] for r in client.conn.execute(
        "SELECT status FROM durable.workflows WHERE workflow_id = %s ORDER BY run_id", (wid,))]
    check(statuses == ["failed", "completed"], "the failed run stays as history: %s" % statuses)


def test_list(client):
    """Client.list / Client.count: a visibility query over search attributes, page by page."""
    q = RUN + "-list"
    for n in range(7):
        client.start("sdk_square", {"n": n}, workflow_id="%s-%d" % (q, n), queue=q,
                     search_attributes={"Parity": "even" if n % 2 == 0 else "odd", "N": n})
    with InProcess(q):
        for n in range(3):
            client.result("%s-%d" % (q, n), wait=30)
        query = "WorkflowId STARTS_WITH '%s-' AND Parity = 'even' ORDER BY WorkflowId" % q
        rows = list(client.list(query, page_size=2))
        done = client.count("WorkflowId STARTS_WITH '%s-' AND ExecutionStatus = 'Completed'" % q)
        big = client.count("WorkflowId STARTS_WITH '%s-' AND N >= 5" % q)
    check([r["workflow_id"] for r in rows] == ["%s-%d" % (q, n) for n in (0, 2, 4, 6)],
          "the even runs, in order, over pages of 2: %s" % [r["workflow_id"] for r in rows])
    check(rows[0]["search_attributes"] == {"Parity": "even", "N": 0}, "rows carry their search attributes")
    check(done >= 3 and big == 2, "counts by status and by a numeric attribute: %s, %s" % (done, big))
    try:
        client.count("Parity = ")
        raise Failure("a malformed query was accepted")
    except dw.psycopg.Error as e:
        check(e.sqlstate == "DU001" and "position 10" in str(e), "a malformed query: %s" % e)
    for n in range(7):
        if client.status("%s-%d" % (q, n)) == "running":
            client.terminate("%s-%d" % (q, n))


def test_batch(client):
    """Client.batch: the background worker resets, then signals every matching run, once."""
    q = RUN + "-batch"
    ids = ["%s-%d" % (q, n) for n in range(5)]
    with InProcess(q):
        for wid in ids:
            client.start("sdk_publish", None, workflow_id=wid, queue=q)
        for wid in ids:
            wait_for("%s to wait" % wid, lambda: client.published(wid).get("stage"))
        # a reset batch first: every run starts over as a new run
        reset = client.batch("reset", "WorkflowId STARTS_WITH '%s-'" % q, reason="redo",
                             payload={"to_seq": 1})
        wait_for("the reset batch to complete",
                 lambda: (client.batch_progress(reset) or {}).get("state") == "completed")
        check(client.batch_progress(reset)["applied"] == 5 and all(
            client.conn.execute("SELECT count(*) FROM durable.workflows WHERE workflow_id = %s",
                                (wid,)).fetchone()[0] == 2 for wid in ids),
              "the reset batch replaced each run by a new one")
        for wid in ids:
            wait_for("%s to wait again" % wid, lambda: client.published(wid).get("stage"))
        batch = client.batch("signal", "WorkflowId STARTS_WITH '%s-'" % q,
                             signal="approve", payload={"by": "the batch"})
        results = [client.result(wid, wait=30) for wid in ids]
        progress = wait_for("the batch to complete",
                            lambda: (client.batch_progress(batch) or {}).get("state") == "completed"
                            and client.batch_progress(batch))
    check(results == ["done"] * 5 and all(client.published(w) == {"stage": "approved by the batch"}
                                          for w in ids),
          "every run got the batch's signal and finished: %s" % results)
    check(progress["applied"] == 5 and progress["failed"] == 0,
          "the batch's progress: %s" % {k: progress[k] for k in ("state", "applied", "skipped", "failed")})


def test_signal_handlers(client):
    """ctx.on_signal + ctx.wait_condition: signals of several names, one wait each."""
    q = RUN + "-cart"
    wid = q + "-1"
    client.start("sdk_cart", None, workflow_id=wid, queue=q)
    # sent before any worker runs: buffered, taken in the order they came
    for name, payload in (("add", "tea"), ("add", "cups"), ("remove", "tea"), ("add", "honey"),
                          ("checkout", None), ("done", "thanks")):
        client.signal(wid, name, payload)
    with InProcess(q):
        res = client.result(wid, wait=30)
    check(res == {"items": ["cups", "honey"], "then": ["done", "thanks"]},
          "the handlers saw every signal in order and the condition ended the wait: %s" % res)
    names = [e["name"] for e in journal(client.conn, wid)]
    check(names[0] == '["add", "checkout", "remove"]' and len(names) == 6,
          "one journal entry per signal, named by the handled names: %s" % names)


def query_error(client, *args, **kw):
    try:
        client.query(*args, **kw)
    except dw.psycopg.Error as e:
        return e
    raise Failure("the query %r did not fail" % (args,))


def test_queries(client):
    """ctx.on_query + Client.query: live queries answered by a worker from the replayed run."""
    q = RUN + "-tally"
    wid = q + "-1"
    client.start("sdk_tally", None, workflow_id=wid, queue=q)
    # a posted query wakes the queue's workers: the background worker
    # NOTIFYs the queue's channel while the caller waits
    heard = []
    listener = dw.psycopg.connect("", autocommit=True)
    listener.add_notify_handler(lambda n: heard.append(n.channel))
    listener.execute('LISTEN "durable_%s"' % q)
    asker = threading.Thread(target=lambda: query_error(client, wid, "items", timeout=2))
    asker.start()
    wait_for("the query's NOTIFY", lambda: listener.execute("SELECT 1") and "durable_" + q in heard,
             timeout=2)
    asker.join()
    listener.close()
    with InProcess(q):
        client.signal(wid, "add", "tea")
        client.signal(wid, "add", "cups")
        wait_for("both signals taken", lambda: sum(
            e["status"] == "completed" for e in journal(client.conn, wid)) == 2)
        check(client.query(wid, "items") == ["tea", "cups"], "the query saw the handlers' state")
        check(client.query(wid, "has", "cups") is True and client.query(wid, "has", "milk") is False,
              "a query takes arguments")
        before = journal(client.conn, wid)
        with client.conn.transaction(force_rollback=True):
            client.conn.execute("SELECT durable.wf_signal(%s, 'add', '\"jam\"')", (wid,))
            check(client.query(wid, "items") == ["tea", "cups"],
                  "a query works inside the caller's open transaction (and does not see its signal)")
        e = query_error(client, wid, "nope")
        check(e.sqlstate == "DU015" and "no handler" in e.diag.message_primary,
              "an unknown query is DU015: %s" % e.diag.message_primary)
        e = query_error(client, wid, "broken")
        check(e.sqlstate == "DU015" and "division" in e.diag.message_primary,
              "a failing handler is DU015 with its message: %s" % e.diag.message_primary)
        check(journal(client.conn, wid) == before, "queries left the journal as it was")
        client.signal(wid, "add", "stop")
        check(client.result(wid, wait=30) == 3, "the run went on after the queries")
        check(client.query(wid, "items") == ["tea", "cups", "stop"], "a closed run answers from its journal")
    e = query_error(client, wid, "items", timeout=0.3)
    check(e.sqlstate == "DU016", "with no worker the query times out with DU016: %s" % e.diag.message_primary)


def update_error(client, *args, **kw):
    try:
        client.update(*args, **kw)
    except (dw.UpdateFailed, dw.DurableTimeout, dw.psycopg.Error) as e:
        return e
    raise Failure("the update %r did not fail" % (args,))


def test_updates(client):
    """ctx.on_update + Client.update / update_with_start: validated, journaled, deduplicated."""
    q = RUN + "-ucart"
    wid = q + "-1"
    client.start("sdk_update_cart", None, workflow_id=wid, queue=q)
    # no worker yet: the update is sent, its result does not come in time
    uid = client.send_update(wid, "add", "tea", update_id="add-tea")
    e = None
    try:
        client.update_result(wid, uid, timeout=0.3)
    except dw.DurableTimeout as x:
        e = x
    check(e is not None, "with no worker the result is not there in time (DurableTimeout)")
    with InProcess(q):
        check(client.update_result(wid, uid) == 1, "a worker handled the waiting update: 1 item")
        check(client.update(wid, "add", "cups", update_id="add-cups") == 2, "an update returns its handler's value")
        check(client.update(wid, "add", "cups", update_id="add-cups") == 2,
              "the same update_id again: the same result, no second item")
        e = update_error(client, wid, "add", "")
        check(isinstance(e, dw.UpdateFailed) and "needs a name" in str(e),
              "the validator rejected an empty item: %s" % e)
        e = update_error(client, wid, "remove", "tea")
        check(isinstance(e, dw.UpdateFailed) and "no handler" in str(e), "an unknown update is rejected: %s" % e)
        kinds = [(j["kind"], j["name"], j["status"]) for j in journal(client.conn, wid)]
        check(kinds.count(("update", "add", "completed")) == 2 and len(kinds) == 3,
              "two updates journaled, the rejected ones left no trace: %s" % kinds)
        check(client.query(wid, "items") == ["tea", "cups"], "a query replays the updates")
        check(client.update(wid, "touch") is None, "a handler that returns None answers None (not a timeout)")
        check(client.update(wid, "checkout") == ["tea", "cups"], "checkout answers with the cart")
        check(client.result(wid, wait=30) == ["tea", "cups"],
              "the run went on from the state the updates left, across a replay")
        e = update_error(client, wid, "add", "jam")
        check(isinstance(e, dw.psycopg.Error) and e.sqlstate == "DU007", "a closed run takes no updates: %s" % e)
        # update-with-start: start and update commit together
        wid2 = q + "-2"
        e = None
        try:
            client.update_with_start("sdk_update_cart", None, wid2, "checkout", queue=q)
        except dw.UpdateFailed as x:
            e = x
        check(e is not None and "empty" in str(e), "a handler that raised fails the update: %s" % e)
        check(client.update_with_start("sdk_update_cart", None, wid2, "add", "jam", queue=q) == 1,
              "update-with-start reaches the running run")
        check(client.update(wid2, "checkout") == ["jam"] and client.result(wid2, wait=30) == ["jam"],
              "the second run checked out")
        statuses = [(j["name"], j["status"]) for j in journal(client.conn, wid2) if j["kind"] == "update"]
        check(statuses == [("checkout", "failed"), ("add", "completed"), ("checkout", "completed")],
              "the failed update is journaled as failed: %s" % statuses)
        # an update taken while the code waits on a gather: replayed there
        wid3 = q + "-3"
        client.start("sdk_update_gather", None, workflow_id=wid3, queue=q)
        wait_for("the gather to wait on both timers", lambda: [
            (j["kind"], j["status"]) for j in journal(client.conn, wid3)] == [("sleep", "pending")] * 2)
        check(client.update(wid3, "bump") == 1, "the update was handled while the gather waited")
        check(client.result(wid3, wait=30) == 1, "after the timers the replay applied the update at the gather")
        # two waits, an update at each: replayed at each
        wid4 = q + "-4"
        client.start("sdk_update_two_waits", None, workflow_id=wid4, queue=q)
        wait_for("both timers to wait", lambda: [
            (j["kind"], j["status"]) for j in journal(client.conn, wid4)] == [("sleep", "pending")] * 2)
        check(client.update(wid4, "note") is False, "the first update came while first() waited")
        wait_for("the fast timer", lambda: [j["status"] for j in journal(client.conn, wid4)][:2]
                 == ["pending", "completed"])
        check(client.update(wid4, "note") is True, "the second came while slow.result() waited")
        check(client.result(wid4, wait=30) == [False, True],
              "replayed, each update ran at its own wait")
    # the replayer replays runs with updates
    problems = [p for _, _, p in dw.replay(client.conn, "sdk_update_cart") if p is not None]
    problems += [p for _, _, p in dw.replay(client.conn, "sdk_update_two_waits") if p is not None]
    problems += [p for _, _, p in dw.replay(client.conn, "sdk_update_gather") if p is not None]
    check(problems == [], "the replayer finds the update runs deterministic: %s" % problems)


def test_typed_search_attributes(client):
    """search_attribute_add: typed values checked at start and upsert, lists compare them typed."""
    q = RUN + "-typed"
    score, region, due = "Score_" + RUN, "Region_" + RUN, "Due_" + RUN
    client.conn.execute("SELECT durable.search_attribute_add(%s, 'int')", (score,))
    client.conn.execute("SELECT durable.search_attribute_add(%s, 'keyword')", (region,))
    client.conn.execute("SELECT durable.search_attribute_add(%s, 'datetime')", (due,))
    try:
        client.start("sdk_scored", {"attr": score, "score": 1}, workflow_id=q + "-x",
                     queue=q, search_attributes={score: "high"})
        raise Failure("a string for an int attribute was accepted")
    except dw.psycopg.Error as e:
        check(e.sqlstate == "DU001" and "declared as int" in e.diag.message_primary,
              "a start with a value of the wrong type fails with DU001: %s" % e.diag.message_primary)
    with InProcess(q):
        for i, (n, r) in enumerate([(9, "eu"), (10, "us"), (100, "eu")]):
            # 10:00+02 is 08:00Z: earlier than 09:00Z as a time, later as text
            client.start("sdk_scored", {"attr": score, "score": n}, workflow_id="%s-%d" % (q, i),
                         queue=q, search_attributes={region: r, due: "2026-06-01T%02d:00:00+02:00" % (10 + i)})
            check(client.result("%s-%d" % (q, i), wait=30) == "ok", "run %d set its score" % i)
    found = [r["workflow_id"] for r in client.list("%s > 9 AND %s = 'eu' ORDER BY WorkflowId ASC"
                                                   % (score, region))]
    check(found == [q + "-2"], "the declared int and keyword filter together: %s" % found)
    found = [r["workflow_id"] for r in client.list("%s < '2026-06-01T09:00:00Z' ORDER BY WorkflowId ASC" % due)]
    check(found == [q + "-0"], "the declared datetime compares as a time, not as text: %s" % found)
    check(client.count("%s BETWEEN 9 AND 10" % score) == 2, "a range over the declared int")
    rows = client.conn.execute(
        "SELECT workflow_id, int_value FROM durable.search_attribute_values WHERE name = %s"
        " ORDER BY workflow_id", (score,)).fetchall()
    check(rows == [(q + "-0", 9), (q + "-1", 10), (q + "-2", 100)], "the typed view: %s" % rows)
    client.conn.execute("SELECT durable.search_attribute_remove(%s)", (score,))
    client.conn.execute("SELECT durable.search_attribute_remove(%s)", (region,))
    client.conn.execute("SELECT durable.search_attribute_remove(%s)", (due,))


def test_upsert_search_attributes(client):
    """ctx.upsert_search_attributes: clients list runs by what the workflow set."""
    q = RUN + "-staged"
    wid = q + "-1"
    with InProcess(q):
        client.start("sdk_staged", None, workflow_id=wid, queue=q)
        query = "WorkflowId = '%s' AND Stage = 'waiting' AND Owner = 'ops'" % wid
        wait_for("the run to set its Stage", lambda: client.count(query) == 1)
        client.signal(wid, "go")
        res = client.result(wid, wait=30)
    rows = list(client.list("WorkflowId = '%s'" % wid))
    check(res == "ok" and rows[0]["search_attributes"] == {"Stage": "done"},
          "the second upsert replaced Stage and removed Owner: %s" % rows[0]["search_attributes"])
    kinds = [(e["kind"], e["name"]) for e in journal(client.conn, wid)]
    check(kinds.count(("upsert", "search_attributes")) == 2, "both upserts are in the journal: %s" % kinds)


def test_start_many(client):
    """Client.start_many: 200 runs in one call, all or none."""
    q = RUN + "-many"
    ids = client.start_many("sdk_square", [{"n": n} for n in range(200)], queue=q)
    check(len(ids) == 200 and len(set(ids)) == 200, "200 distinct ids came back")
    with InProcess(q, concurrency=4):
        results = [client.result(wid, wait=30) for wid in ids]
    check(results == [n * n for n in range(200)],
          "every run completed with its own input's result, in input order")
    # one taken id: the whole call fails and starts nothing
    given = [q + "-a", ids[0], q + "-b"]
    client.conn.execute("SELECT durable.wf_start('sdk_square', '{\"n\": 1}', %s, %s)", (ids[0], q))
    try:
        client.start_many("sdk_square", [{"n": 1}] * 3, workflow_ids=given, queue=q)
        raise Failure("a running id did not fail the call")
    except dw.psycopg.Error as e:
        check(e.sqlstate == "DU006", "the call failed with DU006 (%s)" % e.sqlstate)
    n = client.conn.execute("SELECT count(*) FROM durable.workflows WHERE workflow_id = ANY (%s)",
                            ([q + "-a", q + "-b"],)).fetchone()[0]
    check(n == 0, "a call that failed on one id started none of the others")
    client.terminate(ids[0])


def test_fairness_keys(client):
    """fairness keys: a small tenant's runs are claimed between a big tenant's backlog;
    Client.start's and ctx.activity's fairness options reach the tasks."""
    q = RUN + "-fair"
    client.start_many("sdk_square", [{"n": n} for n in range(30)],
                      workflow_ids=["%s-a%d" % (q, n) for n in range(30)], queue=q, fairness_key="a")
    for i in range(2):
        client.start("sdk_square", {"n": i}, workflow_id="%s-b%d" % (q, i), queue=q,
                     fairness_key="b", fairness_weight=2)
    with InProcess(q, concurrency=1):
        for wid in ["%s-a%d" % (q, n) for n in range(30)] + ["%s-b0" % q, "%s-b1" % q]:
            client.result(wid, wait=30)
    order = [r[0] for r in client.conn.execute(
        "SELECT workflow_id FROM durable.workflows WHERE queue = %s ORDER BY closed_at, run_id", (q,))]
    places = [order.index("%s-b%d" % (q, i)) for i in range(2)]
    check(max(places) < 8, "tenant b's 2 runs closed among the first 8 of 32, not after a's 30: %s" % places)
    keys = client.conn.execute("SELECT fairness_key, fairness_weight FROM durable.runs WHERE workflow_id = %s",
                               ("%s-b0" % q,)).fetchone()
    check(keys == ("b", 2.0), "the run keeps its start's key and weight: %s" % (keys,))
    act_q = q + "-act"
    with InProcess(q):
        client.start("sdk_fair_act", {"queue": act_q}, workflow_id=q + "-act", queue=q, fairness_key="t-1")
        task = None
        for _ in range(100):
            task = client.conn.execute(
                "SELECT t.fairness_key, t.fairness_weight FROM durable.tasks t JOIN durable.runs r USING (run_id)"
                " WHERE r.workflow_id = %s AND t.kind = 'activity'", (q + "-act",)).fetchone()
            if task:
                break
            time.sleep(0.1)
        check(task == ("bulk", 0.5), "ctx.activity's fairness options reach its task: %s" % (task,))
    with InProcess(act_q), InProcess(q):
        check(client.result(q + "-act", wait=30) == 1, "the activity ran")


def test_fire_and_forget(client):
    """a workflow that returns right after an activity and a signal_external it
    never awaited still sends them (it suspends first, then completes)"""
    q = RUN + "-faf"
    target = q + "-target"
    client.start("sdk_replaying", None, workflow_id=target, queue=q + "-idle")
    client.start("sdk_fire_and_forget", {"queue": q + "-act", "target": target}, workflow_id=q, queue=q)
    with InProcess(q), InProcess(q + "-act"):
        check(client.result(q, wait=30) == "returned", "the run completed with its return value")
    # the activity may have finished before the run closed, or been
    # withdrawn by the close; either way its command was recorded
    kinds = client.conn.execute(
        "SELECT string_agg(kind || ':' || status, ' ' ORDER BY seq) FROM durable.journal "
        " WHERE workflow_id = %s", (q,)).fetchone()[0]
    check(kinds in ("activity:completed signal_external:completed", "activity:cancelled signal_external:completed"),
          "both calls were sent before the run closed: %s" % kinds)
    got = client.conn.execute("SELECT count(*) FROM durable.signals s JOIN durable.runs r USING (run_id) "
                              " WHERE r.workflow_id = %s AND s.name = 'note'", (target,)).fetchone()[0]
    check(got == 1, "the signal reached its target once: %d" % got)
    client.terminate(target)


def test_refused_ends(client):
    """a call that ends a task and that the engine refuses fails the task
    instead of leaving it leased forever: an activity result over the
    payload limit (DU008) fails its step at once, a child whose id is taken
    (DU006) fails the workflow task, which is retried"""
    q = RUN + "-refused"
    with InProcess(q):
        check(client.result(client.start("sdk_huge_result", None, workflow_id=q + "-huge", queue=q), wait=30)
              == "ResultTooLarge", "the too-large result failed the activity with ResultTooLarge")
        check(calls("huge") == 1, "the activity ran once, not at every lease expiry: %d" % calls("huge"))
        client.start("sdk_replaying", None, workflow_id=q + "-kid", queue=q + "-idle")
        client.start("sdk_taken_child", {"id": q + "-kid"}, workflow_id=q + "-parent", queue=q)
        failed = None
        for _ in range(100):
            failed = client.conn.execute(
                "SELECT details->'error'->>'sqlstate' FROM durable.history "
                " WHERE workflow_id = %s AND event_type = 'workflow_task_failed' LIMIT 1",
                (q + "-parent",)).fetchone()
            if failed:
                break
            time.sleep(0.1)
        check(failed == ("DU006",), "the refused suspend failed the workflow task with DU006: %s" % (failed,))
    client.terminate(q + "-parent")
    client.terminate(q + "-kid")


TESTS = [test_refused_ends, test_fire_and_forget, test_fairness_keys, test_queries, test_updates, test_typed_search_attributes, test_upsert_search_attributes, test_signal_handlers, test_batch, test_list, test_reset, test_versioning, test_messages, test_pause, test_start_many, test_is_replaying, test_async_completion, test_publish, test_step_checkpointing, test_transaction_exactly_once, test_transaction_zombie,
         test_activity_retries, test_activity_final_failure, test_sleep, test_signals,
         test_child_workflows, test_gather_first, test_cancellation, test_auto_heartbeat,
         test_continue_as_new,
         test_nondeterminism, test_sigterm, test_finish_rides_on_poll]


def main():
    only = set(sys.argv[1:])
    client = dw.Client("")
    client.conn.execute("CREATE EXTENSION IF NOT EXISTS durable")
    client.conn.execute("CREATE TABLE IF NOT EXISTS sdk_tx (workflow_id text, attempt int)")
    client.conn.execute("CREATE TABLE IF NOT EXISTS sdk_counts (key text PRIMARY KEY, n int)")
    client.conn.execute("CREATE TABLE IF NOT EXISTS sdk_async (workflow_id text, seq int)")
    failed = []
    start = time.monotonic()
    for t in TESTS:
        if only and t.__name__ not in only:
            continue
        print("%s" % t.__name__, flush=True)
        t0 = time.monotonic()
        try:
            t(client)
            print("  passed (%.1f s)" % (time.monotonic() - t0), flush=True)
        except Exception as e:
            failed.append(t.__name__)
            print("  FAILED: %s: %s" % (type(e).__name__, e), flush=True)
            if not isinstance(e, Failure):
                traceback.print_exc()
    ran = len(only) if only else len(TESTS)
    print("test_sdk: %d of %d tests passed in %.1f s%s" % (
        ran - len(failed), ran, time.monotonic() - start,
        "; failed: " + ", ".join(failed) if failed else ""))
    print("PASS" if not failed else "FAIL")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
