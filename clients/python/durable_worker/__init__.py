"""durable_worker: a small Python SDK for the durable PostgreSQL extension.

The SQL protocol (docs/protocol.md) is the real interface; this module only
makes it pleasant.  Workflows are plain functions replayed against their
journal: every durable call (step, activity, sleep, signal wait, child)
takes the next seq; a resolved entry returns its recorded result, a pending
one suspends the function, a new one runs (local step) or becomes a command.

    import durable_worker as dw

    @dw.activity()
    def charge(ctx, order):
        return {"charged": order["amount"]}

    @dw.workflow()
    def order(ctx, order):
        reserved = ctx.step("reserve", lambda: {"ok": True})
        receipt = ctx.activity("charge", order, queue="payments")
        ctx.sleep("1s")
        return {"reserved": reserved, "receipt": receipt}

    dw.Worker("dbname=app", queue="default").run()

Uses Debian's python3-psycopg (psycopg 3) and nothing else.
"""

import datetime
import json
import logging
import os
import select
import signal
import socket
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import Jsonb

__all__ = [
    "workflow", "activity", "Worker", "Client", "ActivityError",
    "DurableTimeout", "CancelledError", "ApplicationError",
    "NonRetryableError", "WorkflowFailed", "replay", "Nondeterminism",
]

log = logging.getLogger("durable")

WORKFLOWS = {}
ACTIVITIES = {}

# An activity that returns ASYNC leaves its attempt open: the worker does not
# complete it, and something else does later, by workflow id and step
# (ctx.workflow_id, ctx.seq), with Client.complete_activity or
# Client.fail_activity (durable.activity_complete / activity_fail).  The
# attempt's start-to-close timeout (or the worker's lease) still applies.
ASYNC = object()


def workflow(name=None):
    """Register a workflow function fn(ctx, input) under a name."""
    def register(fn):
        WORKFLOWS[name or fn.__name__] = fn
        return fn
    return register


def activity(name=None):
    """Register an activity function fn(ctx, input) under a name."""
    def register(fn):
        ACTIVITIES[name or fn.__name__] = fn
        return fn
    return register


class ActivityError(Exception):
    """A durable call failed for good: the journal holds its error."""

    def __init__(self, error):
        self.error = error or {}
        self.type = self.error.get("type")
        super().__init__(self.error.get("message") or json.dumps(self.error))


class DurableTimeout(ActivityError):
    """The call timed out (error type "timeout": see timeout_type)."""


class CancelledError(ActivityError):
    """The call was cancelled because the workflow was asked to cancel."""


class ApplicationError(Exception):
    """Raised by workflow code to fail the run (not retried)."""

    def __init__(self, message, type=None, details=None):
        super().__init__(message)
        self.type = type or self.__class__.__name__
        self.details = details


class NonRetryableError(Exception):
    """Raised by an activity whose failure must not be retried."""


class WorkflowFailed(Exception):
    """Client.result: the workflow closed without a result."""

    def __init__(self, diag):
        super().__init__(diag)


class UpdateFailed(Exception):
    """An update failed (its handler raised), was rejected (its
    validator raised) or was never handled (its run closed first)."""

    def __init__(self, diag):
        super().__init__("%s: %s" % (diag.message_primary, diag.message_detail))
        self.detail = diag.message_detail


class _Suspend(BaseException):
    """The workflow waits: unwind to the worker, which sends the commands."""


class _Stale(BaseException):
    """The engine refused the task's token (DU004): drop the task."""


class _ContinueAsNew(BaseException):
    def __init__(self, input):
        super().__init__()
        self.input = input


def _duration(value):
    """Seconds (number), "30s"-style strings and timedeltas, as the engine takes them."""
    if value is None:
        return None
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    return value


def _error_dict(e):
    """The error object (protocol section 6) for an exception raised by
    workflow, activity or handler code: an escaping durable call's error as
    it was recorded, else the exception's type (an ApplicationError's given
    type, else its class name), message and details."""
    if isinstance(e, ActivityError):
        return dict(e.error)
    err = {"type": getattr(e, "type", None) or type(e).__name__, "message": str(e)}
    if getattr(e, "details", None) is not None:
        err["details"] = e.details
    return err


def _error_of(entry):
    err = entry.get("error") or {"message": "step %s" % entry.get("status")}
    if entry.get("status") == "cancelled" or err.get("type") == "cancelled":
        return CancelledError(err)
    if err.get("type") == "timeout":
        return DurableTimeout(err)
    return ActivityError(err)


# the signal name wait_condition waits on when no signal handler is
# registered (only update handlers can end the wait); no handler runs for it
_NO_SIGNAL = "durable:wait_condition"


def _call_with_args(fn, args):
    return fn() if args is None else fn(args)


class Handle:
    """A durable call started without waiting: wait with .result(),
    ctx.gather() or ctx.first()."""

    def __init__(self, ctx, seq):
        self._ctx = ctx
        self.seq = seq

    def done(self):
        entry = self._ctx._journal.get(self.seq)
        return entry is not None and entry["status"] != "pending"

    def result(self):
        self._ctx._wait_point()
        if not self.done():
            self._ctx._suspend()
        return self._value()

    def _value(self):
        entry = self._ctx._journal[self.seq]
        if entry["status"] == "completed":
            return entry.get("result")
        raise _error_of(entry)

    def cancel(self):
        """Cancel the call if it is still pending: an activity, timer or
        signal wait resolves as cancelled (result() raises CancelledError;
        the activity's worker gets DU004 on its next heartbeat); a child is
        asked to cancel and resolves when it closes.  A call that already
        finished keeps its result."""
        if self.done() or self.seq in self._ctx._cancelled:
            return
        self._ctx._cancelled.add(self.seq)
        self._ctx._commands.append({"seq": self.seq, "type": "cancel"})


class WorkflowContext:
    """What workflow code sees.  Durable calls must happen in the same
    order on every replay."""

    def __init__(self, conn, task, worker=None):
        self._worker = worker                   # token calls go through worker._call
        self._own_conn = conn
        self._token = task["token"]
        self._journal = {e["seq"]: e for e in (task["journal"] or [])}
        # the calls before the last one the journal held when this task
        # began are being replayed (see is_replaying)
        self._replay_until = max(self._journal, default=0)
        self._seq = 0
        self._commands = []
        self._cancelled = set()                 # seqs a cancel was sent for
        self._handlers = {}                     # signal name -> handler(payload)
        self._queries = {}                      # query name -> handler([args])
        self._update_handlers = {}              # update name -> (handler, validator)
        updates = task.get("updates") or []
        # updates to validate and handle when the code waits (see _take_updates)
        self._requested_updates = [u for u in updates if u["state"] == "requested"]
        # accepted ones by journal entry: a replay applies them again
        self._accepted_updates = {u["seq"]: u for u in updates if u.get("seq") is not None}
        # the code's waits (result, gather, first, wait_condition), counted:
        # an update taken at wait n is applied at wait n on every replay
        self._waits = 0
        self.workflow_id = task["workflow_id"]
        self.run_id = task["run_id"]
        self.attempt = task["attempt"]
        self.input = task["input"]
        self.cancelled = task["cancel_requested"]

    @property
    def is_replaying(self):
        """True while the code re-runs calls this run already made in an
        earlier task (their results come from the journal), up to the last
        one the journal held when this task began; False from there on.
        For side effects outside durable calls that must not repeat on
        every replay, such as logging."""
        return self._seq < self._replay_until

    def publish(self, name, value):
        """Publish a named value of this run (None removes it) for clients
        to read with Client.published or durable.wf_published, even when no
        worker runs.  Skipped while replaying: the earlier task published
        what the replayed code publishes again."""
        if self.is_replaying:
            return
        self._worker._call(self._token, "task_publish %s" % name,
                           "SELECT durable.task_publish(%s, %s, %s)",
                           (self._token, name, None if value is None else Jsonb(value)))

    def upsert_search_attributes(self, attributes):
        """Set search attributes of this run ({name: value}; None removes
        one): clients find the run by them with wf_list / Client.list from
        this task's commit on.  Journaled: a replay changes nothing."""
        seq, entry, same = self._next("upsert", "search_attributes")
        if not same:
            self._upsert(seq, entry, attributes)

    def _upsert(self, seq, entry, attributes):
        # another call at seq: the engine answers DU003 (nondeterminism)
        self._worker._call(self._token, "task_upsert_search_attributes",
                           "SELECT durable.task_upsert_search_attributes(%s, %s, %s)",
                           (self._token, seq, Jsonb(attributes)))
        self._journal[seq] = {"seq": seq, "kind": "upsert", "name": "search_attributes",
                              "status": "completed", "result": None}

    # -- versioning
    def patched(self, patch_id):
        """True when this run takes the new code path of a change.  A run
        that passed this point under the old code (its journal holds
        another call here) gets False, on every replay; a run that gets
        here under the new code records a marker (a local step named
        "patch:<patch_id>") and gets True, on every replay too.  Wrap the
        changed code in `if ctx.patched("id"): new else: old`."""
        name = "patch:" + patch_id
        entry = self._journal.get(self._seq + 1)
        if entry is not None:
            if entry["kind"] == "local" and entry["name"] == name:
                self._seq += 1
                return True
            return False                        # the old code ran here
        self._seq += 1
        self._record(self._seq, name, True)
        return True

    def deprecate_patch(self, patch_id):
        """Once no running run can take the old path of a change, drop the
        old branch and call this where patched() was: it steps over the
        marker of runs that recorded one, and records nothing."""
        entry = self._journal.get(self._seq + 1)
        if entry is not None and entry["kind"] == "local" and entry["name"] == "patch:" + patch_id:
            self._seq += 1

    # -- plumbing
    @property
    def _conn(self):
        # the worker thread's connection, replaced after a lost connection
        return self._worker._conn() if self._worker is not None else self._own_conn

    def _next(self, kind, name):
        self._seq += 1
        entry = self._journal.get(self._seq)
        same = entry is not None and entry["kind"] == kind and entry["name"] == name
        return self._seq, entry, same

    def _record(self, seq, name, result, conn=None):
        """Checkpoint a local step: in conn's open transaction, else as a
        call of its own that survives a lost connection (a repeated
        step_record of the same seq and name is a no-op)."""
        sql = "SELECT durable.step_record(%s, %s, %s, %s)"
        args = (self._token, seq, name, Jsonb(result))
        if conn is None and self._worker is not None:
            self._worker._call(self._token, "step_record %d %s" % (seq, name), sql, args)
        else:
            (conn or self._conn).execute(sql, args)
        self._journal[seq] = {"seq": seq, "kind": "local", "name": name,
                              "status": "completed", "result": result}

    def _command(self, seq, entry, same, cmd):
        if not same:
            cmd["seq"] = seq
            cmd = {k: v for k, v in cmd.items() if v is not None}
            if entry is not None:
                self._mismatch(cmd)
            self._commands.append(cmd)
        return Handle(self, seq)

    def _mismatch(self, cmd):
        """The journal holds another call at this seq: the code changed.
        Let the engine judge it (DU003, naming both calls) in a transaction
        that is always rolled back, rather than replay a wrong result."""
        with self._conn.transaction(force_rollback=True):
            self._conn.execute("SELECT durable.task_suspend(%s, %s)",
                               (self._token, Jsonb([cmd])))
        raise RuntimeError("step %d changed but the engine accepted it" % cmd["seq"])

    # -- local steps
    def step(self, name, fn, *args):
        """Run fn once and checkpoint its result (1 commit)."""
        seq, entry, same = self._next("local", name)
        if same:
            return entry.get("result")
        if entry is not None:
            self._record(seq, name, None)       # raises the engine's DU003
        result = fn(*args)
        self._record(seq, name, result)
        return result

    def transaction(self, name, fn):
        """Run fn(conn) and the checkpoint in one transaction: exactly once."""
        seq, entry, same = self._next("local", name)
        if same:
            return entry.get("result")
        if entry is not None:
            self._record(seq, name, None)       # raises the engine's DU003
        conn = self._conn
        with conn.transaction():
            result = fn(conn)
            self._record(seq, name, result, conn)
        return result

    # -- remote calls
    def start_activity(self, name, input=None, queue=None, retry=None,
                       start_to_close=None, schedule_to_close=None,
                       schedule_to_start=None, heartbeat=None, priority=None,
                       fairness_key=None, fairness_weight=None):
        """Schedule an activity; fairness_key / fairness_weight default to
        the run's (protocol 3.1a)."""
        seq, entry, same = self._next("activity", name)
        return self._command(seq, entry, same, {
            "type": "activity", "name": name, "input": input, "queue": queue,
            "retry": retry, "start_to_close": _duration(start_to_close),
            "schedule_to_close": _duration(schedule_to_close),
            "schedule_to_start": _duration(schedule_to_start),
            "heartbeat": _duration(heartbeat), "priority": priority,
            "fairness_key": fairness_key, "fairness_weight": fairness_weight})

    def activity(self, name, input=None, **options):
        return self.start_activity(name, input, **options).result()

    def start_timer(self, duration):
        seq, entry, same = self._next("sleep", "sleep")
        return self._command(seq, entry, same, {"type": "sleep", "duration": _duration(duration)})

    def sleep(self, duration):
        self.start_timer(duration).result()

    def start_wait_signal(self, name, timeout=None):
        seq, entry, same = self._next("signal", name)
        return self._command(seq, entry, same, {"type": "signal", "name": name,
                                                "timeout": _duration(timeout)})

    def wait_signal(self, name, timeout=None):
        """The next signal's payload; raises DurableTimeout after timeout."""
        return self.start_wait_signal(name, timeout).result()

    def start_wait_signals(self, names, timeout=None):
        """Wait for the next signal of any of several names; the handle's
        result() is {"name": ..., "payload": ...}."""
        names = list(names)
        # the journal names the wait by its list, as the engine prints it
        seq, entry, same = self._next("signal", json.dumps(names, ensure_ascii=False))
        return self._command(seq, entry, same, {"type": "signal", "names": names,
                                                "timeout": _duration(timeout)})

    def wait_signals(self, names, timeout=None):
        """(name, payload) of the next signal of any of names; raises
        DurableTimeout after timeout."""
        r = self.start_wait_signals(names, timeout).result()
        return r["name"], r["payload"]

    def on_signal(self, name, handler):
        """Register handler(payload) for signals of name; wait_condition
        runs it on each such signal, in the order they arrived."""
        self._handlers[name] = handler

    def on_query(self, name, handler):
        """Register handler for live queries of name (Client.query,
        durable.wf_query): a worker replays the run from its journal and
        calls handler(args), or handler() when the query has no args, and
        the caller gets what it returns.  A handler reads state; it must
        not make durable calls (a query never changes the journal)."""
        self._queries[name] = handler

    def on_update(self, name, handler, validator=None):
        """Register handler for updates of name (Client.update,
        durable.wf_update).  While the workflow waits, its worker takes
        each update sent: validator(args) (or validator() without args)
        may raise to reject it, which leaves no trace in the journal and
        tells the caller why; otherwise handler(args) runs, its return
        value is the caller's result (an exception fails the update) and
        the update is journaled, so a replay runs the handler again at the
        same wait.  Handlers change workflow state; they must not make
        durable calls.  Register them before the workflow's first wait."""
        self._update_handlers[name] = (handler, validator)

    def _wait_point(self):
        """The code is about to wait: count the wait, and (on a replay)
        run the handlers of the updates this run accepted at this wait,
        in journal order."""
        self._waits += 1
        while True:
            entry = self._journal.get(self._seq + 1)
            u = self._accepted_updates.get(self._seq + 1)
            if entry is None or entry["kind"] != "update" or u is None \
                    or u.get("waiting_on") != self._waits:
                return
            self._seq += 1
            handler = self._update_handlers.get(entry["name"])
            if handler is not None:
                try:
                    _call_with_args(handler[0], u.get("args"))
                except Exception:
                    pass                        # it failed then too: journaled as failed

    def _take_updates(self):
        """The code waits: validate and handle the updates sent since, in
        the order they arrived.  Returns the update and reject_update
        commands; each accepted one takes the next journal entry."""
        commands = []
        for u in self._requested_updates:
            handler = self._update_handlers.get(u["name"])
            reject = None
            if handler is None:
                reject = {"type": "UpdateNotFound", "message": "workflow has no handler for update %r (ctx.on_update)"
                          % u["name"]}
            elif handler[1] is not None:
                try:
                    _call_with_args(handler[1], u.get("args"))
                except Exception as e:
                    reject = _error_dict(e)
            if reject is not None:
                commands.append({"type": "reject_update", "update_id": u["update_id"], "error": reject})
                continue
            self._seq += 1
            cmd = {"seq": self._seq, "type": "update", "update_id": u["update_id"],
                   "waiting_on": self._waits}
            try:
                result = _call_with_args(handler[0], u.get("args"))
                json.dumps(result)              # what cannot be sent fails the update
                cmd["result"] = result
            except Exception as e:
                cmd["error"] = _error_dict(e)
            commands.append(cmd)
            self._journal[self._seq] = {"seq": self._seq, "kind": "update", "name": u["name"],
                                        "status": "failed" if "error" in cmd else "completed",
                                        "result": cmd.get("result"), "error": cmd.get("error")}
            self._accepted_updates[self._seq] = dict(u, state="accepted", seq=self._seq,
                                                     waiting_on=self._waits)
        self._requested_updates = []
        return commands

    def wait_condition(self, predicate, timeout=None):
        """Wait until predicate() holds: Temporal's workflow.wait_condition
        over state that signal handlers (on_signal) and update handlers
        (on_update) change.  Each signal of a registered name runs its
        handler; updates run theirs while the workflow waits.  timeout
        bounds the wait for each next signal (DurableTimeout)."""
        while not predicate():
            if not self._handlers and not self._update_handlers:
                raise RuntimeError("wait_condition needs a signal or update handler (ctx.on_signal, ctx.on_update)")
            h = self.start_wait_signals(sorted(self._handlers) or [_NO_SIGNAL], timeout)
            self._wait_point()
            if predicate():
                # updates satisfied it: stop waiting (a signal that came
                # meanwhile goes back to the buffer, see the cancel command)
                h.cancel()
                return
            if not h.done():
                self._suspend()
            r = h._value()
            handler = self._handlers.get(r["name"])
            if handler is not None:             # _NO_SIGNAL has none: a stray signal of it is dropped
                handler(r["payload"])

    def start_child(self, name, input=None, workflow_id=None, queue=None,
                    options=None, parent_close_policy=None):
        seq, entry, same = self._next("child", name)
        return self._command(seq, entry, same, {
            "type": "child", "name": name, "input": input, "workflow_id": workflow_id,
            "queue": queue, "options": options, "parent_close_policy": parent_close_policy})

    def child(self, name, input=None, **options):
        return self.start_child(name, input, **options).result()

    def start_signal_external(self, workflow_id, signal, payload=None, signal_id=None):
        """Signal another workflow's running run (same namespace).  The
        handle's result() is None once sent; it raises ActivityError with
        type workflow_not_found when that id has no running run."""
        seq, entry, same = self._next("signal_external", signal)
        return self._command(seq, entry, same, {
            "type": "signal_external", "workflow_id": workflow_id, "signal": signal,
            "payload": payload, "signal_id": signal_id})

    def signal_external(self, workflow_id, signal, payload=None, signal_id=None):
        return self.start_signal_external(workflow_id, signal, payload, signal_id).result()

    def start_cancel_external(self, workflow_id, reason=None):
        """Ask another workflow's running run to cancel (like wf_cancel)."""
        seq, entry, same = self._next("cancel_external", workflow_id)
        return self._command(seq, entry, same, {
            "type": "cancel_external", "workflow_id": workflow_id, "reason": reason})

    def cancel_external(self, workflow_id, reason=None):
        return self.start_cancel_external(workflow_id, reason).result()

    def gather(self, *handles):
        """All results, in order; suspends until every call resolved."""
        self._wait_point()
        if not all(h.done() for h in handles):
            self._suspend()
        return [h._value() for h in handles]

    def first(self, *handles):
        """(index, result) of the first of the calls to resolve (by
        position when several had when the code got here).  The choice is
        recorded, as a local step named "first" holding the index, so a
        replay makes it again when more of the calls have resolved since
        (the journal does not say in which order its entries resolved).
        A run that passed here before such records keeps the rule it ran
        with: the first resolved by position."""
        self._wait_point()
        entry = self._journal.get(self._seq + 1)
        if entry is not None and entry["kind"] == "local" and entry["name"] == "first":
            self._seq += 1
            return entry["result"], handles[entry["result"]]._value()
        done = [i for i, h in enumerate(handles) if h.done()]
        if not done:
            self._suspend()
        if entry is None:                       # new ground: record the choice
            self._seq += 1
            self._record(self._seq, "first", done[0])
        return done[0], handles[done[0]]._value()

    def _suspend(self):
        """The code waits on something pending: the task ends here (updates
        sent meanwhile are taken at this wait, self._waits)."""
        raise _Suspend()

    def continue_as_new(self, input):
        raise _ContinueAsNew(input)


class ActivityContext:
    """What activity code sees.  conn is the worker thread's own
    connection (autocommit) for the activity's SQL (a new one after the old
    one was lost); raise CancelledError when heartbeat() reports a cancel
    request to end the attempt for good."""

    def __init__(self, worker, task):
        self._worker = worker
        self.token = task["token"]
        self.workflow_id = task["workflow_id"]
        self.seq = task["seq"]                  # the activity's step in its run's journal
        self.attempt = task["attempt"]
        self.heartbeat_details = task["heartbeat"]
        self.cancelled = task["cancel_requested"]
        self._details = None
        # the engine's lease may be shorter than the worker's (start_to_close,
        # heartbeat timeout): the worker heartbeats at a third of the real one
        lease = task.get("lease_left") or worker.lease
        self._hb_period = max(min(float(lease), worker.lease) / 3.0, 0.1)
        self._hb_next = time.monotonic() + self._hb_period

    @property
    def conn(self):
        return self._worker._conn()

    def heartbeat(self, details=None):
        """Save progress for the next attempt; returns whether the run was
        asked to cancel (the worker also heartbeats on its own).  Without a
        connection to the server it logs that and returns: the worker's own
        heartbeats go on trying."""
        self._details = details
        self._hb_next = time.monotonic() + self._hb_period
        try:
            self.cancelled = self._worker._heartbeat(self.token, details) or self.cancelled
        except psycopg.Error as e:
            if not _lost(e, self._worker._hb_conn):
                raise
            log.warning("heartbeat of task %s failed: %s", self.token, _reason(e))
        return self.cancelled


# results handed in with one poll at most
_MAX_DONE = 100

# reconnecting: at once, then after 0.1 s, doubling up to 5 s
_RETRY_FIRST = 0.1
_RETRY_MAX = 5.0


def _connect(dsn, namespace):
    kw = {}
    if "connect_timeout" not in conninfo_to_dict(dsn) and not os.environ.get("PGCONNECT_TIMEOUT"):
        kw["connect_timeout"] = 10              # an unreachable host must not hang the worker
    conn = psycopg.connect(dsn, autocommit=True, **kw)
    if namespace:
        try:
            conn.execute("SELECT set_config('durable.namespace', %s, false)", (namespace,))
        except BaseException:
            conn.close()
            raise
    return conn


def _lost(e, conn):
    """Whether error e means that conn is gone (or, conn None, that no
    connection could be made): reconnect and try again."""
    if not isinstance(e, psycopg.OperationalError):
        return False
    if conn is None or conn.closed or conn.broken:
        return True
    return (e.sqlstate or "").startswith(("08", "57P"))


def _reason(e):
    """An error in one line, for the log."""
    msg = str(e).strip() or type(e).__name__
    msg = msg.splitlines()[0]
    return "%s (%s)" % (msg, e.sqlstate) if getattr(e, "sqlstate", None) else msg


def _close(*conns):
    for c in conns:
        if c is not None:
            try:
                c.close()
            except Exception:
                pass


class Worker:
    """Polls one queue and runs its workflow and activity tasks.

    concurrency tasks run at once, each on its own connection; polls ask for
    up to max_tasks; an idle worker waits for NOTIFY durable_<queue> and
    polls anyway every poll_interval seconds.  Running activities are
    heartbeated every third of their lease (the engine shortens it to the
    activity's start_to_close or heartbeat timeout).  SIGTERM or SIGINT: stop polling, let
    running tasks finish for up to grace seconds, hand the rest back.

    A lost or refused connection (server restart, failover,
    pg_terminate_backend, a pooler) never ends the worker: it logs the
    reason (WARNING), reconnects at once and then with a backoff of 0.1 s
    doubling up to 5 s, and polls at once after every reconnect.  The
    LISTEN runs on a connection of its own (a thread): after each
    (re)LISTEN it wakes the poll loop, since a NOTIFY may have been missed.
    A task's own calls (step_record, task_suspend, task_complete, task_fail,
    task_release) are sent again on a new connection until the server
    answers, and finished results wait for the next poll: nothing computed
    while the server was away is lost while its token is valid (until the
    lease expiry is processed); a call refused with DU004 (stale token)
    drops the task with a log line.  A workflow task whose connection broke
    inside ctx.transaction() is released, to be replayed at once.

    A finished task's result rides on the next poll (task_poll's
    done_tokens/done_results, which the poll loop sends at once): finishing
    one task and claiming the next costs one commit, not two.
    """

    def __init__(self, dsn, queue="default", concurrency=4, max_tasks=None,
                 lease=30, poll_interval=5, grace=None, name=None, namespace=None,
                 workflows=None, activities=None):
        self.dsn = dsn
        self.queue = queue
        self.concurrency = concurrency
        self.max_tasks = max_tasks or concurrency
        self.lease = lease
        self.poll_interval = poll_interval
        self.grace = lease if grace is None else grace
        self.name = name or "%s-%d" % (socket.gethostname(), os.getpid())
        self.namespace = namespace
        self.workflows = WORKFLOWS if workflows is None else workflows
        self.activities = ACTIVITIES if activities is None else activities
        self._stop = threading.Event()
        # targeted wake-ups: the LISTEN connection also listens on a channel
        # of this worker's own, which the polling connection names in
        # durable.wake_channel; a commit that gives the queue work then wakes
        # just enough waiting workers, not every worker of the queue
        self.wake_channel = "durable_w_%s" % os.urandom(8).hex()
        # a successful (re)connect of one loop cuts the other's backoff short
        self._kick_poll = threading.Event()
        self._kick_listen = threading.Event()
        self._slots = threading.Semaphore(concurrency)
        self._local = threading.local()
        self._running = {}                      # token -> ActivityContext
        self._inflight = {}                     # token -> task, every kind
        self._wake_r, self._wake_w = os.pipe()  # stop() and _finish() wake the poll loop
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)    # a full pipe already wakes it
        self._done = []                         # (token, result as JSON text) for the next poll
        self._done_lock = threading.Lock()
        self._lock = threading.Lock()
        self._hb_conn = None
        self._grace_end = None                  # set when stopping: the end of retries
        self._handed_in = 0                     # results the last poll completed
        self.completed = 0
        self.abandoned = 0

    # -- connections
    def _conn(self):
        """This thread's connection, a new one if the last was lost."""
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            self._local.conn = None
            conn = self._local.conn = _connect(self.dsn, self.namespace)
        return conn

    def _call(self, token, what, sql, args):
        """Run one call on a task's token on this thread's connection.

        A lost connection does not lose the call: it is sent again on a new
        connection, at once and then with capped backoff, until the server
        answers (or, once the worker is stopping, its grace is over).  That
        is safe: a call that did commit is a no-op or gets DU004 the second
        time.  DU004 (stale token): log, raise _Stale (drop the task)."""
        delay, lost_at, quick = _RETRY_FIRST, None, 0
        while True:
            conn = None
            try:
                conn = self._conn()
                conn.execute(sql, args)
                if lost_at is not None:
                    log.info("task %s: %s delivered after reconnecting (%.1f s)",
                             token, what, time.monotonic() - lost_at)
                return
            except psycopg.Error as e:
                if e.sqlstate == "DU004":
                    log.warning("task %s: %s refused, the token is stale (DU004): task dropped%s", token, what,
                                "" if lost_at is None else
                                " (the call before the connection was lost may have gone through)")
                    raise _Stale() from None
                if not _lost(e, conn):
                    raise
                now = time.monotonic()
                if self._grace_end is not None and now > self._grace_end:
                    log.warning("task %s: giving up %s, the worker is stopping: %s", token, what, _reason(e))
                    raise
                _close(getattr(self._local, "conn", None))
                self._local.conn = None
                if lost_at is None:
                    lost_at = now
                    log.warning("task %s: connection lost during %s (%s): sending it again", token, what,
                                _reason(e))
                else:
                    log.debug("task %s: %s still not sent: %s", token, what, _reason(e))
                # at once while the server accepts connections (they may be
                # killed one by one), with backoff while it refuses them
                if conn is not None and quick < 3:
                    quick += 1
                    continue
                time.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX)
                if conn is not None:
                    quick = 0

    def _heartbeat(self, token, details=None):
        sql = "SELECT durable.task_heartbeat(%s, %s, %s * interval '1 s')"
        args = (token, Jsonb(details) if details is not None else None, self.lease)
        with self._lock:
            fresh = False
            while True:
                if self._hb_conn is None or self._hb_conn.closed:
                    _close(self._hb_conn)
                    self._hb_conn = None
                    self._hb_conn = _connect(self.dsn, self.namespace)
                    fresh = True
                try:
                    return self._hb_conn.execute(sql, args).fetchone()[0]
                except psycopg.Error as e:
                    # an old connection killed while idle: once more on a new one
                    if fresh or not _lost(e, self._hb_conn):
                        raise
                    _close(self._hb_conn)
                    self._hb_conn = None

    def _heartbeat_loop(self):
        # keeps going after stop while activities still run (the grace period)
        while True:
            time.sleep(0.1)
            if self._stop.is_set() and not self._running:
                return
            now = time.monotonic()
            for token, ctx in list(self._running.items()):
                if now < ctx._hb_next:
                    continue
                ctx._hb_next = now + ctx._hb_period
                try:
                    ctx.cancelled = self._heartbeat(token, ctx._details) or ctx.cancelled
                except psycopg.Error as e:
                    log.warning("heartbeat of task %s failed: %s", token, _reason(e))
                    if e.sqlstate == "DU004":       # the lease is gone: stop trying
                        ctx._hb_next = float("inf")

    # -- running tasks
    def _run_task(self, task):
        start = time.monotonic()
        try:
            if task["kind"] == "workflow":
                outcome = self._run_workflow(task)
            elif task["kind"] == "query":
                outcome = self._run_query(task)
            else:
                outcome = self._run_activity(task)
            self.completed += 1
        except _Stale:
            outcome = "dropped: the token is stale (DU004)"
        except psycopg.Error as e:
            outcome = "error: %s" % _reason(e)
            if (e.sqlstate or "").startswith("DU") and task["kind"] != "query":
                outcome += self._fail_refused(task["token"], e)
        except Exception as e:                  # never lose the worker thread
            outcome = "error %r" % e
        finally:
            self._inflight.pop(task["token"], None)
            self._slots.release()
        log.log(logging.WARNING if outcome.startswith("error") else logging.INFO,
                "%s %s %s/%s attempt %s: %s (%.0f ms)", self.queue, task["kind"],
                task["workflow_id"], task["name"], task["attempt"], outcome,
                (time.monotonic() - start) * 1000)

    def _fail_refused(self, token, e, conn=None):
        """The engine refused the call that ends a task (DU002 for a bad
        command, DU006 for a child id in use, DU008 for a value over the
        payload limit, ...).  Left alone, the task would stay leased and run
        again at every lease expiry, forever: fail it with the engine's
        error instead (protocol section 11).  Retryable, so that a fixed
        worker can take it up again, except DU008: the same value would be
        too large again, so the step (or the run) fails.  Returns a note for
        the log."""
        err = {"type": "ResultTooLarge" if e.sqlstate == "DU008" else "TaskRefused",
               "sqlstate": e.sqlstate, "message": e.diag.message_primary}
        args = (token, Jsonb(err), e.sqlstate != "DU008")
        try:
            if conn is not None:
                conn.execute("SELECT durable.task_fail(%s, %s, %s)", args)
            else:
                self._call(token, "task_fail", "SELECT durable.task_fail(%s, %s, %s)", args)
            return "; the task failed with it"
        except (_Stale, psycopg.Error) as e2:
            return "; failing the task failed too: %s" % _reason(e2)

    def _run_workflow(self, task):
        token = task["token"]
        fn = self.workflows.get(task["workflow_type"])
        if fn is None:
            self._call(token, "task_fail", "SELECT durable.task_fail(%s, %s, true)", (token, Jsonb(
                {"type": "UnknownWorkflow", "message": "no workflow %r on this worker" % task["workflow_type"]})))
            return "unknown workflow type, retried later"
        ctx = WorkflowContext(None, task, self)
        try:
            while True:
                try:
                    result = fn(ctx, task["input"])
                    break
                except _Suspend:
                    if not ctx._requested_updates:
                        raise
                # it waits with updates sent: handle them (their callers get
                # the outcome at once), then run the code again from the
                # journal, so that it goes on from the state they left
                updates = ctx._take_updates()
                self._send_updates(token, ctx, updates)
                task = dict(task, journal=list(ctx._journal.values()), updates=list(ctx._accepted_updates.values()))
                ctx = WorkflowContext(None, task, self)
        except _Suspend:
            self._call(token, "task_suspend", "SELECT durable.task_suspend(%s, %s)", (token, Jsonb(ctx._commands)))
            return "suspended with %d command(s)" % len(ctx._commands)
        except _ContinueAsNew as c:
            self._call(token, "task_complete", "SELECT durable.task_complete(%s, NULL, NULL, %s)",
                       (token, Jsonb(c.input)))
            return "continued as new"
        except (ApplicationError, ActivityError) as e:
            err = _error_dict(e)
            self._call(token, "task_fail", "SELECT durable.task_fail(%s, %s, false)", (token, Jsonb(err)))
            return "failed: %s" % err["message"]
        except psycopg.Error as e:
            if e.sqlstate == "DU004":
                log.warning("task %s: token is stale (DU004): task dropped", token)
                return "dropped: the token is stale (DU004)"
            if _lost(e, getattr(self._local, "conn", None)):
                # lost in the middle of a transaction step: whether it
                # committed is unknown, the engine's journal knows; hand the
                # task back so that it is replayed from there at once
                log.warning("task %s: connection lost in the workflow code (%s): releasing the task",
                            token, _reason(e))
                self._call(token, "task_release", "SELECT durable.task_release(%s)", (token,))
                return "connection lost: released, to be replayed"
            # nondeterminism (DU003) and the like: retry the task later
            self._call(token, "task_fail", "SELECT durable.task_fail(%s, %s, true)", (token, Jsonb(
                {"type": "nondeterminism" if e.sqlstate == "DU003" else "WorkflowTaskError",
                 "sqlstate": e.sqlstate, "message": e.diag.message_primary})))
            return "workflow task failed (%s): %s" % (e.sqlstate, e.diag.message_primary)
        except Exception as e:
            self._call(token, "task_fail", "SELECT durable.task_fail(%s, %s, true)", (token, Jsonb(
                {"type": type(e).__name__, "message": str(e), "traceback": traceback.format_exc()})))
            return "workflow task failed: %r" % e
        if any(c["type"] != "cancel" for c in ctx._commands):
            # it returned right after calls it did not await: closing the
            # run now would withdraw them, so send them first; the next
            # task replays to this return and completes the run (a cancel
            # alone needs no task: closing withdraws what it would cancel)
            self._call(token, "task_suspend", "SELECT durable.task_suspend(%s, %s)", (token, Jsonb(ctx._commands)))
            return "suspended with %d command(s) before completing" % len(ctx._commands)
        self._finish(token, result)
        return "completed"

    def _send_updates(self, token, ctx, updates):
        """task_updates; a result over durable.max_payload_size (DU008)
        fails its update instead, the largest first, so that a handler's
        oversized answer does not fail the workflow task again and again."""
        while True:
            try:
                self._call(token, "task_updates", "SELECT durable.task_updates(%s, %s)",
                           (token, Jsonb(updates)))
                return
            except psycopg.Error as e:
                sized = [c for c in updates if "result" in c]
                if e.sqlstate != "DU008" or not sized:
                    raise
                big = max(sized, key=lambda c: len(json.dumps(c["result"])))
                err = {"type": "ResultTooLarge", "message": e.diag.message_primary}
                del big["result"]
                big["error"] = err
                ctx._journal[big["seq"]].update(status="failed", result=None, error=err)

    def _run_query(self, task):
        """Answer a live query: replay the run from its journal (no call
        reaches the database), then run the query's handler."""
        token, fn = task["token"], self.workflows.get(task["workflow_type"])
        result, error = None, None
        if fn is None:
            error = {"type": "UnknownWorkflow", "message": "no workflow %r on this worker" % task["workflow_type"]}
        else:
            ctx = _ReplayContext(None, task, self)
            try:
                fn(ctx, ctx.input)
            except (_ReplayEnd, _Suspend, _ContinueAsNew, ApplicationError, ActivityError):
                pass                            # replayed as far as the journal goes
            except Exception as e:
                error = {"type": type(e).__name__, "message": "replay failed: %s" % e}
            handler = ctx._queries.get(task["name"])
            if error is None and handler is None:
                error = {"type": "QueryNotFound", "message": "workflow %r has no handler for query %r (ctx.on_query)"
                         % (task["workflow_type"], task["name"])}
            elif error is None:
                try:
                    result = handler() if task["input"] is None else handler(task["input"])
                except Exception as e:
                    error = {"type": type(e).__name__, "message": str(e)}
        try:
            self._call(token, "task_answer_query", "SELECT durable.task_answer_query(%s, %s, %s)",
                       (token, Jsonb(result), None if error is None else Jsonb(error)))
        except psycopg.Error as e:
            if e.sqlstate != "DU008":
                raise
            self._call(token, "task_answer_query", "SELECT durable.task_answer_query(%s, NULL, %s)",
                       (token, Jsonb({"type": "AnswerTooLarge", "message": e.diag.message_primary})))
            return "query %s: answer too large" % task["name"]
        return "query %s answered%s" % (task["name"], "" if error is None else " with an error")

    def _run_activity(self, task):
        token = task["token"]
        fn = self.activities.get(task["name"])
        if fn is None:
            self._call(token, "task_fail", "SELECT durable.task_fail(%s, %s, true)", (token, Jsonb(
                {"type": "UnknownActivity", "message": "no activity %r on this worker" % task["name"]})))
            return "unknown activity, retried later"
        ctx = ActivityContext(self, task)
        self._running[token] = ctx
        try:
            result = fn(ctx, task["input"])
        except CancelledError as e:
            # the run was asked to cancel: this attempt ends for good
            err = {"type": "cancelled", "message": str(e)}
            self._call(token, "task_fail", "SELECT durable.task_fail(%s, %s, false)", (token, Jsonb(err)))
            return "cancelled"
        except Exception as e:
            err = _error_dict(e)
            self._call(token, "task_fail", "SELECT durable.task_fail(%s, %s, %s)",
                       (token, Jsonb(err), not isinstance(e, NonRetryableError)))
            return "failed: %r" % e
        finally:
            self._running.pop(token, None)
        if result is ASYNC:
            return "left open for async completion"
        self._finish(token, result)
        return "completed"

    def _finish(self, token, result):
        """Hand a result to the poll loop, which completes it with its next
        poll (and wakes up for that now).  The result becomes JSON here, on
        the task's thread: one that cannot fails this task alone."""
        text = json.dumps(result)
        with self._done_lock:
            self._done.append((token, text))
        self._wake(b"d")

    def _take_done(self):
        with self._done_lock:
            done, self._done = self._done[:_MAX_DONE], self._done[_MAX_DONE:]
        return done

    def _give_back(self, done):
        """Results not handed in (the connection broke): keep them."""
        with self._done_lock:
            self._done[:0] = done

    def _drain_wake(self):
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    def _complete_each(self, conn, done):
        """Complete results one by one (a poll carrying them failed): a
        stale token fails alone and the others still count.  Returns how
        many were completed."""
        n = 0
        for i, (token, text) in enumerate(done):
            try:
                conn.execute("SELECT durable.task_complete(%s, %s::jsonb)", (token, text))
                n += 1
            except psycopg.Error as e:
                if _lost(e, conn):
                    self._give_back(done[i:])
                    raise
                if e.sqlstate == "DU004":
                    log.warning("task %s: result refused, the token is stale (DU004): result dropped", token)
                else:
                    log.warning("completing task %s failed: %s%s", token, _reason(e),
                                self._fail_refused(token, e, conn))
        return n

    def _flush_done(self, conn):
        """Complete every result still waiting (shutdown)."""
        while True:
            done = self._take_done()
            if not done:
                return
            try:
                conn.execute("SELECT durable.task_complete_many(%s, %s::jsonb[])",
                             ([t for t, _ in done], [r for _, r in done]))
            except psycopg.Error as e:
                if _lost(e, conn):
                    self._give_back(done)
                    raise
                self._complete_each(conn, done)

    # -- the loop
    def _poll(self, conn, n):
        """Claim up to n tasks, completing the finished ones in the same
        call; self._handed_in: how many finished results it completed."""
        self._drain_wake()
        self._handed_in = 0
        done = self._take_done()
        sql = ("SELECT token, kind, workflow_id, run_id, workflow_type, name, seq, input, "
               "       attempt, journal, heartbeat, cancel_requested, updates, "
               "       extract(epoch FROM lease_until - now())::float8 AS lease_left "
               "  FROM durable.task_poll(%s, %s, %s, %s * interval '1 s', %s, %s::jsonb[])")
        args = [self.queue, self.name, n, self.lease, None, None]
        if done:
            args[4] = [t for t, _ in done]
            args[5] = [r for _, r in done]
        try:
            cur = conn.execute(sql, args)
            self._handed_in = len(done)
        except psycopg.Error as e:
            if done and _lost(e, conn):         # lost the server: keep them for later
                self._give_back(done)
            if not done or _lost(e, conn):
                raise
            # one of them went stale (or so): nothing was done; finish them
            # one by one, then claim
            self._handed_in = self._complete_each(conn, done)
            args[4] = args[5] = None
            cur = conn.execute(sql, args)
        cols = [c.name for c in cur.description]
        return [dict(zip(cols, row)) for row in cur.fetchall()]

    def _wait(self, timeout):
        """Wait up to timeout seconds for a wake-up: a NOTIFY or a (re)LISTEN
        (the listener thread), a finished task, stop."""
        with self._done_lock:
            if self._done:                      # results to hand in: poll now
                return
        r, _, _ = select.select([self._wake_r], [], [], timeout)
        if r:
            self._drain_wake()

    def _wake(self, why=b"n"):
        try:
            os.write(self._wake_w, why)
        except OSError:                         # BlockingIOError: the pipe is full
            pass

    def _listen_loop(self):
        """Keep a connection LISTENing on the queue's channel (its own, so
        that losing it does not hold up polling): wake the poll loop on each
        notification, and after each (re)LISTEN, since a NOTIFY may have been
        missed meanwhile."""
        conn, lost_at, failures, delay = None, None, 0, _RETRY_FIRST
        channels = ('LISTEN "durable_%s"' % self.queue, 'LISTEN "%s"' % self.wake_channel)
        while not self._stop.is_set():
            if conn is None:
                try:
                    conn = _connect(self.dsn, self.namespace)
                    for channel in channels:
                        conn.execute(channel)
                except psycopg.Error as e:
                    _close(conn)
                    conn = None
                    failures += 1
                    lost_at = lost_at or time.monotonic()
                    log.debug("LISTEN connection: cannot connect (%d attempts): %s", failures, _reason(e))
                    self._kick_listen.wait(delay)
                    self._kick_listen.clear()
                    delay = min(delay * 2, _RETRY_MAX)
                    continue
                if failures or lost_at is not None:
                    log.info("listening again after %.1f s (%d failed attempt(s))",
                             time.monotonic() - lost_at, failures)
                lost_at, failures, delay = None, 0, _RETRY_FIRST
                self._kick_poll.set()           # the server is back: no need to wait
                self._wake(b"l")
            try:
                fd = conn.fileno()
                r, _, _ = select.select([fd], [], [], 0.5)
                if r:
                    pg = conn.pgconn
                    pg.consume_input()          # raises when the server closed the connection
                    n = 0
                    while pg.notifies() is not None:
                        n += 1
                    if conn.closed:
                        raise psycopg.OperationalError("the connection was closed")
                    if n:
                        self._wake()
            except psycopg.Error as e:
                log.warning("lost the LISTEN connection: %s; reconnecting", _reason(e))
                _close(conn)
                conn, lost_at = None, time.monotonic()
        _close(conn)

    def stop(self, *_):
        """Stop polling (safe from a signal handler or another thread)."""
        self._stop.set()
        self._kick_poll.set()
        self._kick_listen.set()
        self._wake(b"x")

    def run(self, until=None):
        """Work until stopped (SIGTERM/SIGINT, stop(), or until() true).
        Connection trouble never ends it: see the class documentation."""
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self.stop)
            signal.signal(signal.SIGINT, self.stop)
        threading.Thread(target=self._heartbeat_loop, daemon=True).start()
        listener = threading.Thread(target=self._listen_loop, daemon=True)
        listener.start()
        pool = ThreadPoolExecutor(self.concurrency)
        log.info("worker %s polling queue %s", self.name, self.queue)
        poll_conn = None
        ever = False                            # connected once already
        down_since = None                       # connection lost or refused since then
        failures, delay = 0, _RETRY_FIRST
        recovered = False                       # first poll after a reconnect
        while not self._stop.is_set() and not (until and until()):
            if poll_conn is None:
                try:
                    c = _connect(self.dsn, self.namespace)
                    try:
                        c.execute("SELECT set_config('durable.wake_channel', %s, false)",
                                  (self.wake_channel,))
                    except BaseException:
                        _close(c)
                        raise
                    poll_conn = c
                except psycopg.Error as e:
                    failures += 1
                    down_since = down_since or time.monotonic()
                    if failures == 1:
                        log.warning("cannot connect to the server: %s; retrying", _reason(e))
                    else:
                        log.info("still cannot connect to the server (%d attempts, %.1f s): %s; "
                                 "next attempt in %.1f s", failures, time.monotonic() - down_since,
                                 _reason(e), delay)
                    self._kick_poll.wait(delay)
                    self._kick_poll.clear()
                    delay = min(delay * 2, _RETRY_MAX)
                    continue
                self._kick_listen.set()
                if down_since is not None:
                    log.info("%s to the server after %.1f s (%d failed attempt(s)): polling now",
                             "reconnected" if ever else "connected", time.monotonic() - down_since, failures)
                ever, recovered = True, down_since is not None
                down_since, failures, delay = None, 0, _RETRY_FIRST
                # and poll at once: work may have become ready meanwhile
            if not self._slots.acquire(timeout=0.5):
                continue
            free = 1
            while free < self.max_tasks and self._slots.acquire(blocking=False):
                free += 1
            try:
                tasks = self._poll(poll_conn, free)
            except psycopg.Error as e:
                for _ in range(free):
                    self._slots.release()
                if _lost(e, poll_conn):
                    log.warning("lost the connection to the server: %s; reconnecting", _reason(e))
                    _close(poll_conn)
                    poll_conn, down_since = None, time.monotonic()
                else:
                    log.warning("poll failed: %s", _reason(e))
                    self._stop.wait(1)
                continue
            if recovered:
                recovered = False
                if self._handed_in:
                    log.info("handed in %d result(s) finished meanwhile, after reconnecting", self._handed_in)
            for _ in range(free - len(tasks)):
                self._slots.release()
            for t in tasks:
                self._inflight[t["token"]] = t
                pool.submit(self._run_task, t)
            if len(tasks) < free:
                self._wait(self.poll_interval)
        self._stop.set()
        self._grace_end = time.monotonic() + self.grace
        log.info("worker %s stopping: waiting for %d running task(s)", self.name, len(self._inflight))
        pool.shutdown(wait=False)
        conn = self._shutdown(poll_conn)
        self.abandoned = len(self._inflight)
        if not self._inflight:
            pool.shutdown(wait=True)
        _close(conn)
        listener.join(2)

    def _shutdown(self, conn):
        """Hand in what finishes within the grace, then hand the rest back:
        ready again at once for another worker; their threads may go on, but
        the engine rejects their late results (DU004).  Returns the
        connection used."""
        warned = False

        def usable():
            nonlocal conn, warned
            if conn is not None and not conn.closed:
                return conn
            _close(conn)
            conn = None
            try:
                conn = _connect(self.dsn, self.namespace)
            except psycopg.Error as e:
                if not warned:
                    log.warning("stopping without a connection to the server: %s", _reason(e))
                    warned = True
            return conn

        def flush():
            with self._done_lock:
                if not self._done:
                    return
            c = usable()
            if c is not None:
                try:
                    self._flush_done(c)
                except psycopg.Error as e:
                    log.warning("completing finished tasks failed: %s", _reason(e))

        while True:
            flush()                             # results of tasks that finished meanwhile
            if not self._inflight or time.monotonic() >= self._grace_end:
                break
            time.sleep(0.05)
        for token in list(self._inflight):
            c = usable()
            if c is None:
                break
            try:
                c.execute("SELECT durable.task_release(%s)", (token,))
                log.info("released task %s", token)
            except psycopg.Error:
                pass
        flush()                                 # finished while the others were released
        with self._done_lock:
            left = len(self._done)
        if left:
            log.warning("%d finished result(s) could not be handed in: their tasks run again "
                        "once their leases expire", left)
        return conn


class Client:
    """Thin wrappers over the client functions."""

    def __init__(self, dsn, namespace=None):
        self.conn = _connect(dsn, namespace) if isinstance(dsn, str) else dsn

    def start(self, name, input=None, workflow_id=None, queue="default", **options):
        return self.conn.execute("SELECT durable.wf_start(%s, %s, %s, %s, %s)",
                                 (name, Jsonb(input), workflow_id, queue, Jsonb(options))).fetchone()[0]

    def start_many(self, name, inputs, workflow_ids=None, queue="default", **options):
        """Start one run per input in one call, all or none; returns the
        workflow ids in the order of inputs (durable.wf_start_many)."""
        inputs = [Jsonb(i) if i is not None else None for i in inputs]
        rows = self.conn.execute(
            "SELECT id FROM durable.wf_start_many(%s, %s::jsonb[], %s::text[], %s, %s) AS id",
            (name, inputs, workflow_ids, queue, Jsonb(options))).fetchall()
        return [r[0] for r in rows]

    def signal(self, workflow_id, name, payload=None, signal_id=None):
        self.conn.execute("SELECT durable.wf_signal(%s, %s, %s, %s)",
                          (workflow_id, name, Jsonb(payload), signal_id))

    def signal_with_start(self, name, input, workflow_id, signal, payload=None,
                          queue="default", **options):
        return self.conn.execute(
            "SELECT durable.wf_signal_with_start(%s, %s, %s, %s, %s, %s, %s)",
            (name, Jsonb(input), workflow_id, signal, Jsonb(payload), queue, Jsonb(options))).fetchone()[0]

    def cancel(self, workflow_id, reason=None):
        self.conn.execute("SELECT durable.wf_cancel(%s, %s)", (workflow_id, reason))

    def query(self, workflow_id, name, args=None, timeout=10):
        """Ask the latest run a live query; a worker of its queue answers
        with its handler (ctx.on_query).  Raises psycopg errors DU016 when
        no worker answers within timeout seconds, DU015 when the handler
        failed or does not exist."""
        return self.conn.execute(
            "SELECT durable.wf_query(%s, %s, %s, %s * interval '1 s')",
            (workflow_id, name, None if args is None else Jsonb(args), timeout)).fetchone()[0]

    def _need_autocommit(self, what):
        if not self.conn.autocommit or \
                self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            raise RuntimeError("%s waits for the workflow's answer, which a transaction still open "
                               "cannot see: use an autocommit connection, or call send_update in "
                               "your transaction and update_result after it commits" % what)

    def send_update(self, workflow_id, name, args=None, update_id=None):
        """Send an update (durable.wf_update) in this connection's current
        transaction; returns its id.  Its result: update_result."""
        return self.conn.execute("SELECT durable.wf_update(%s, %s, %s, %s)",
                                 (workflow_id, name, None if args is None else Jsonb(args),
                                  update_id)).fetchone()[0]

    def update_result(self, workflow_id, update_id, timeout=30):
        """The update's result once the workflow handled it.  Raises
        UpdateFailed when it failed, was rejected or its run closed first,
        DurableTimeout when not handled within timeout seconds."""
        try:
            # r IS NULL: not handled yet (a handler's None is JSON null)
            row = self.conn.execute(
                "SELECT r, r IS NULL FROM durable.wf_update_result(%s, %s, %s * interval '1 s') r",
                (workflow_id, update_id, timeout)).fetchone()
        except psycopg.Error as e:
            if e.sqlstate == "DU017":
                raise UpdateFailed(e.diag) from None
            raise
        if row[1]:
            raise DurableTimeout({"type": "timeout", "message": "update %s of %s not handled within %ss"
                                  % (update_id, workflow_id, timeout)})
        return row[0]

    def update(self, workflow_id, name, args=None, update_id=None, timeout=30):
        """Send an update and wait for its result (Temporal's
        ExecuteUpdate): the send commits first (autocommit connections
        commit each call), since a caller cannot see the answer inside the
        transaction that sent it.  A retry with the same update_id sends
        nothing new and waits for the same result."""
        self._need_autocommit("Client.update")
        update_id = self.send_update(workflow_id, name, args, update_id)
        return self.update_result(workflow_id, update_id, timeout)

    def update_with_start(self, workflow, input, workflow_id, name, args=None,
                          update_id=None, queue="default", timeout=30, **options):
        """Start the workflow unless it runs (id_conflict_policy
        use_existing) and send it an update, in one transaction; then wait
        for the update's result."""
        self._need_autocommit("Client.update_with_start")
        options.setdefault("id_conflict_policy", "use_existing")
        with self.conn.transaction():
            self.start(workflow, input, workflow_id, queue, **options)
            update_id = self.send_update(workflow_id, name, args, update_id)
        return self.update_result(workflow_id, update_id, timeout)

    def published(self, workflow_id):
        """What the latest run of the workflow published: {name: value}."""
        return self.conn.execute("SELECT durable.wf_published(%s)", (workflow_id,)).fetchone()[0]

    def complete_activity(self, workflow_id, seq, result=None):
        """Complete a pending activity left open (ASYNC) by its workflow id and step."""
        self.conn.execute("SELECT durable.activity_complete(%s, %s, %s)",
                          (workflow_id, seq, Jsonb(result)))

    def fail_activity(self, workflow_id, seq, error, retryable=True):
        """Fail the current attempt of a pending activity; its retry policy decides."""
        self.conn.execute("SELECT durable.activity_fail(%s, %s, %s, %s)",
                          (workflow_id, seq, Jsonb(error), retryable))

    def terminate(self, workflow_id, reason=None):
        self.conn.execute("SELECT durable.wf_terminate(%s, %s)", (workflow_id, reason))

    def pause(self, workflow_id, reason=None):
        """Hold the running workflow: none of its tasks is handed out until
        unpause.  False if it was paused already."""
        return self.conn.execute("SELECT durable.wf_pause(%s, %s)",
                                 (workflow_id, reason)).fetchone()[0]

    def reset(self, workflow_id, to_seq, reason=None):
        """Replace the latest run by a new one that keeps its steps before
        to_seq and redoes the rest (a running one is terminated); returns
        the new run's id."""
        return self.conn.execute("SELECT durable.wf_reset(%s, %s, %s)",
                                 (workflow_id, to_seq, reason)).fetchone()[0]

    def fork(self, workflow_id, to_seq, new_workflow_id=None):
        """A new workflow whose first run keeps the latest run's steps
        before to_seq; returns its workflow id."""
        return self.conn.execute("SELECT durable.wf_fork(%s, %s, %s)",
                                 (workflow_id, to_seq, new_workflow_id)).fetchone()[0]

    def unpause(self, workflow_id, reason=None):
        """Let a paused workflow go on.  False if it was not paused."""
        return self.conn.execute("SELECT durable.wf_unpause(%s, %s)",
                                 (workflow_id, reason)).fetchone()[0]

    def status(self, workflow_id):
        return self.conn.execute("SELECT durable.wf_status(%s)", (workflow_id,)).fetchone()[0]

    def list(self, query="", page_size=100):
        """Every run that matches a visibility query (durable.wf_list), as
        dicts, fetched page_size at a time: WorkflowType = 'order' AND
        ExecutionStatus = 'Running' ORDER BY StartTime DESC."""
        token = None
        while True:
            cur = self.conn.execute("SELECT * FROM durable.wf_list(%s, %s, %s)",
                                    (query, page_size, token))
            cols = [c.name for c in cur.description]
            rows = cur.fetchall()
            for r in rows:
                yield dict(zip(cols, r))
            if len(rows) < page_size:
                return
            token = rows[-1][cols.index("next_page_token")]

    def batch(self, operation, query, reason=None, signal=None, payload=None):
        """Start a batch operation (cancel, terminate, signal, pause,
        unpause, reset: payload {"to_seq": n}) over the running runs a
        visibility query matches; the background worker carries it out.
        Returns the batch id."""
        return self.conn.execute("SELECT durable.batch_start(%s, %s, %s, %s, %s)",
                                 (operation, query, reason, signal,
                                  None if payload is None else Jsonb(payload))).fetchone()[0]

    def batch_progress(self, batch_id):
        """The batch's row of durable.batch_list, as a dict."""
        cur = self.conn.execute("SELECT * FROM durable.batch_list WHERE batch_id = %s", (batch_id,))
        row = cur.fetchone()
        return dict(zip([c.name for c in cur.description], row)) if row else None

    def count(self, query=""):
        """How many runs match a visibility query (durable.wf_count)."""
        return self.conn.execute("SELECT durable.wf_count(%s)", (query,)).fetchone()[0]

    def result(self, workflow_id, wait=None):
        """The output; None while running (after waiting up to wait seconds);
        raises WorkflowFailed if the run failed, was cancelled, terminated or timed out."""
        try:
            return self.conn.execute("SELECT durable.wf_result(%s, %s * interval '1 s')",
                                     (workflow_id, wait)).fetchone()[0]
        except psycopg.Error as e:
            if e.sqlstate == "DU010":
                raise WorkflowFailed(e.diag.message_primary + ": " + (e.diag.message_detail or "")) from None
            raise

    def describe(self, workflow_id):
        return self.conn.execute("SELECT durable.wf_describe(%s)", (workflow_id,)).fetchone()[0]

    def history(self, workflow_id):
        cur = self.conn.execute("SELECT * FROM durable.wf_history(%s)", (workflow_id,))
        cols = [c.name for c in cur.description]
        return [dict(zip(cols, r)) for r in cur.fetchall()]


# -- replaying stored histories against the current code (CI)
class _ReplayEnd(BaseException):
    """The code went past the run's journal: everything before matched."""


class Nondeterminism(Exception):
    """The current code asks for another call than the journal holds."""

    def __init__(self, seq, entry, kind, name):
        self.seq, self.entry, self.kind, self.name = seq, entry, kind, name
        if entry is None:
            what = "the code finished, the journal goes on to %s %r" % (kind, name)
        else:
            what = "the journal holds %s %r, the code asked for %s %r" % (
                entry["kind"], entry["name"], kind, name)
        super().__init__("step %d: %s" % (seq, what))


class _ReplayContext(WorkflowContext):
    """A WorkflowContext that never reaches the database: results come from
    the journal, and the replay stops at the first call past it."""

    def publish(self, name, value):
        pass

    def _upsert(self, seq, entry, attributes):
        if entry is None:
            raise _ReplayEnd()
        raise Nondeterminism(seq, entry, "upsert", "search_attributes")

    def _record(self, seq, name, result, conn=None):
        entry = self._journal.get(seq)
        if entry is None:
            raise _ReplayEnd()
        raise Nondeterminism(seq, entry, "local", name)

    def _mismatch(self, cmd):
        raise Nondeterminism(cmd["seq"], self._journal.get(cmd["seq"]), cmd["type"],
                             cmd.get("name") or cmd.get("signal") or cmd.get("workflow_id")
                             or cmd["type"])

    def step(self, name, fn, *args):
        seq, entry, same = self._next("local", name)
        if same:
            return entry.get("result")
        return self._record(seq, name, None)

    def transaction(self, name, fn):
        return self.step(name, fn)


def replay(conn, workflow_type, fn=None, status=None, limit=None):
    """Replay the stored journals of runs of workflow_type (the latest
    first; status filters, e.g. 'running') against fn (default: the
    registered workflow).  Read-only.  Returns [(workflow_id, run_id,
    problem)], problem None when the run replays."""
    fn = fn or WORKFLOWS[workflow_type]
    runs = conn.execute(
        "SELECT workflow_id, run_id, input, attempt, cancel_requested FROM durable.workflows"
        " WHERE workflow_type = %s AND (%s::text IS NULL OR status = %s)"
        " ORDER BY run_id DESC LIMIT %s", (workflow_type, status, status, limit)).fetchall()
    out = []
    for workflow_id, run_id, input, attempt, cancel_requested in runs:
        rows = conn.execute(
            "SELECT seq, kind, name, status, result, error, input FROM durable.journal"
            " WHERE run_id = %s ORDER BY seq", (run_id,)).fetchall()
        journal = [{"seq": r[0], "kind": r[1], "name": r[2], "status": r[3],
                    "result": r[4], "error": r[5]} for r in rows]
        # an accepted update's step input holds its args and the wait it came in
        updates = [dict(r[6] or {}, seq=r[0], name=r[2], state=r[3]) for r in rows if r[1] == "update"]
        ctx = _ReplayContext(None, {"token": None, "journal": journal, "workflow_id": workflow_id,
                                    "run_id": run_id, "attempt": attempt, "input": input,
                                    "cancel_requested": cancel_requested, "updates": updates})
        problem = None
        try:
            fn(ctx, input)
            last = max(ctx._journal, default=0)
            if ctx._seq < last:
                e = ctx._journal[ctx._seq + 1]
                problem = Nondeterminism(ctx._seq + 1, None, e["kind"], e["name"])
        except (_ReplayEnd, _Suspend, _ContinueAsNew, ApplicationError, ActivityError):
            pass
        except Nondeterminism as e:
            problem = e
        except Exception as e:                  # a bug the old journal reaches
            problem = e
        out.append((workflow_id, run_id, problem))
    return out
