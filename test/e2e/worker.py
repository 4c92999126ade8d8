#!/usr/bin/env python3
"""test/e2e/worker.py: a real durable worker process, no SDK.

Plain SQL over psycopg 3 (Debian's python3-psycopg).  The connection comes
from the PG* environment variables.  The worker LISTENs on
"durable_<queue>" for wake-ups and polls with durable.task_poll.

Workflow tasks are run by journaled replay (DESIGN.md section 2): the
workflow function runs from the top and every durable call takes the next
seq.  A resolved journal entry returns its recorded result; a new local
step runs here and is checkpointed with durable.step_record in the same
transaction as the step's own SQL write (so it happens exactly once); a new
activity becomes a command and the task suspends with durable.task_suspend.

Activity tasks (queue --activity-queue) run one attempt each and finish
with durable.task_complete; they are at-least-once.

Every step and activity counts its executions in the table
e2e_counters(step text primary key, n int), keyed "<workflow_id>:<name>",
which the tests create and inspect.

Usage:
    worker.py [--mode workflow|activity|all] [--queue Q] [--activity-queue AQ]
              [--name NAME] [--lease '2 s'] [--pause-after STEP]
              [--pause-inside STEP] [--pause-seconds N]
              [--exit-when-idle SECONDS]
The pause options (also E2E_PAUSE_AFTER / E2E_PAUSE_INSIDE /
E2E_PAUSE_SECONDS) make the worker sleep right after checkpointing the
named local step, or inside its transaction after the step's own write
but before step_record commits, so a test can kill it there.  SIGTERM stops the worker after its current task.
"""

import argparse
import json
import os
import select
import signal
import sys
import time

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

STALE_TOKEN = "DU004"


def log(worker, msg):
    print(f"{time.strftime('%H:%M:%S')} [{worker}] {msg}", flush=True)


class Suspend(Exception):
    """The workflow function cannot go on: hand these commands over."""

    def __init__(self, commands):
        super().__init__("suspend")
        self.commands = commands


class ActivityFailed(Exception):
    """A journaled activity failed (after its retries)."""

    def __init__(self, name, error):
        super().__init__(f"activity {name} failed: {json.dumps(error)}")
        self.error = error


class Nondeterminism(Exception):
    pass


class StaleToken(Exception):
    """Our lease is gone: another worker owns the task now."""


def is_stale(err):
    return getattr(err, "sqlstate", None) == STALE_TOKEN


def bump(conn, key):
    """Count one execution of a step or activity in e2e_counters."""
    conn.execute(
        "INSERT INTO e2e_counters (step, n) VALUES (%s, 1) "
        "ON CONFLICT (step) DO UPDATE SET n = e2e_counters.n + 1",
        (key,))


class Context:
    """Replay state of one workflow task."""

    def __init__(self, worker, task):
        self.worker = worker
        self.conn = worker.conn
        self.token = task["token"]
        self.workflow_id = task["workflow_id"]
        self.attempt = task["attempt"]
        self.journal = {e["seq"]: e for e in (task["journal"] or [])}
        self.seq = 0

    def _next(self, kind, name):
        self.seq += 1
        entry = self.journal.get(self.seq)
        if entry is not None and (entry["kind"] != kind or entry["name"] != name):
            raise Nondeterminism(
                f"seq {self.seq}: journal holds {entry['kind']} {entry['name']!r}, "
                f"code asked for {kind} {name!r}")
        return self.seq, entry

    def step(self, name, fn):
        """A local step: fn(conn) runs in the step_record transaction."""
        seq, entry = self._next("local", name)
        if entry is not None:
            if entry["status"] == "completed":
                return entry["result"]
            raise ActivityFailed(name, entry["error"])
        try:
            with self.conn.transaction():
                result = fn(self.conn)
                w = self.worker
                if w.pause_inside == name and w.pause_seconds > 0:
                    log(w.name, f"{self.workflow_id}: pausing {w.pause_seconds}s inside {name}, "
                                "before step_record commits")
                    time.sleep(w.pause_seconds)
                self.conn.execute(
                    "SELECT durable.step_record(%s::bigint, %s::int, %s::text, %s::jsonb)",
                    (self.token, seq, name, Jsonb(result)))
        except psycopg.Error as e:
            if is_stale(e):
                raise StaleToken(str(e)) from e
            raise
        log(self.worker.name, f"{self.workflow_id}: step {seq} {name} checkpointed")
        w = self.worker
        if w.pause_after == name and w.pause_seconds > 0:
            log(w.name, f"{self.workflow_id}: pausing {w.pause_seconds}s after {name}")
            time.sleep(w.pause_seconds)
        return result

    def activity(self, name, input, start_to_close="5s"):
        seq, entry = self._next("activity", name)
        if entry is None:
            raise Suspend([{
                "seq": seq, "type": "activity", "name": name,
                "queue": self.worker.activity_queue, "input": input,
                "start_to_close": start_to_close,
                "retry": {"initial_interval": "200ms", "backoff_coefficient": 2,
                          "maximum_interval": "1s", "maximum_attempts": 10},
            }])
        if entry["status"] == "completed":
            return entry["result"]
        if entry["status"] == "pending":
            raise Suspend([])
        raise ActivityFailed(name, entry["error"])


def order(ctx, inp):
    """Workflow 'order': step1 -> step2 -> activity A -> step3 -> activity B."""
    wid = ctx.workflow_id

    def validate(conn):
        bump(conn, f"{wid}:step1")
        return {"order": inp["order_id"], "valid": True}

    def reserve(conn):
        bump(conn, f"{wid}:step2")
        return {"reservation": "r-" + inp["order_id"], "qty": inp["qty"]}

    def pack(conn):
        bump(conn, f"{wid}:step3")
        return {"box": "b-" + inp["order_id"], "items": inp["qty"]}

    v = ctx.step("step1", validate)
    r = ctx.step("step2", reserve)
    c = ctx.activity("charge", {"order": v["order"], "amount": r["qty"] * inp["price"]})
    p = ctx.step("step3", pack)
    s = ctx.activity("ship", {"order": v["order"], "box": p["box"]})
    return {"order": v["order"], "valid": v["valid"],
            "reservation": r["reservation"], "charged": c["charged"],
            "box": p["box"], "tracking": s["tracking"]}


WORKFLOWS = {"order": order}


def run_activity(conn, task):
    """Activities: each counts its attempt, then returns a result."""
    inp = task["input"] or {}
    bump(conn, f"{task['workflow_id']}:{task['name']}")
    if task["name"] == "charge":
        return {"charged": inp["amount"], "receipt": "c-" + inp["order"]}
    if task["name"] == "ship":
        return {"tracking": "t-" + inp["order"], "box": inp["box"]}
    raise ValueError(f"unknown activity {task['name']!r}")


class Worker:
    def __init__(self, args):
        self.name = args.name
        self.mode = args.mode
        self.queue = args.queue
        self.activity_queue = args.activity_queue
        self.lease = args.lease
        self.pause_after = args.pause_after
        self.pause_inside = args.pause_inside
        self.pause_seconds = args.pause_seconds
        self.exit_when_idle = args.exit_when_idle
        self.stop = False
        self.woken = False
        self.stats = {"workflow_tasks": 0, "activity_tasks": 0, "completed": 0,
                      "suspended": 0, "stale": 0, "errors": 0}
        self.conn = psycopg.connect("", autocommit=True, row_factory=dict_row,
                                    application_name=f"e2e-worker {self.name}")
        self.conn.add_notify_handler(self._notified)
        queues = []
        if self.mode in ("workflow", "all"):
            queues.append(self.queue)
        if self.mode in ("activity", "all"):
            queues.append(self.activity_queue)
        self.queues = queues
        for q in queues:
            self.conn.execute(
                sql.SQL("LISTEN {}").format(sql.Identifier("durable_" + q)))

    def _notified(self, n):
        self.woken = True

    def poll(self, queue):
        try:
            return self.conn.execute(
                "SELECT * FROM durable.task_poll(%s::text, %s::text, 1, %s::interval)",
                (queue, self.name, self.lease)).fetchall()
        except psycopg.Error as e:
            self.stats["errors"] += 1
            log(self.name, f"poll {queue} failed: {e.sqlstate} {e}")
            time.sleep(0.5)
            return []

    def workflow_task(self, task):
        self.stats["workflow_tasks"] += 1
        log(self.name, f"{task['workflow_id']}: workflow task attempt {task['attempt']}, "
                       f"journal has {len(task['journal'] or [])} entries")
        ctx = Context(self, task)
        fn = WORKFLOWS.get(task["workflow_type"])
        try:
            try:
                if fn is None:
                    raise ValueError(f"unknown workflow type {task['workflow_type']!r}")
                result = fn(ctx, task["input"])
            except Suspend as s:
                self.conn.execute("SELECT durable.task_suspend(%s::bigint, %s::jsonb)",
                                  (ctx.token, Jsonb(s.commands)))
                self.stats["suspended"] += 1
                log(self.name, f"{ctx.workflow_id}: suspended with "
                               f"{[c['name'] for c in s.commands]}")
                return
            except (ActivityFailed, Nondeterminism, ValueError, KeyError, TypeError) as e:
                self.conn.execute("SELECT durable.task_fail(%s::bigint, %s::jsonb, false)",
                                  (ctx.token, Jsonb({"type": type(e).__name__,
                                                     "message": str(e)})))
                log(self.name, f"{ctx.workflow_id}: workflow failed: {e}")
                return
            self.conn.execute("SELECT durable.task_complete(%s::bigint, %s::jsonb)",
                              (ctx.token, Jsonb(result)))
            self.stats["completed"] += 1
            log(self.name, f"{ctx.workflow_id}: completed")
        except StaleToken as e:
            self.stats["stale"] += 1
            log(self.name, f"{ctx.workflow_id}: lost the lease, dropping the task ({e})")
        except psycopg.Error as e:
            if is_stale(e):
                self.stats["stale"] += 1
                log(self.name, f"{ctx.workflow_id}: lost the lease, dropping the task ({e})")
            else:
                self.stats["errors"] += 1
                log(self.name, f"{ctx.workflow_id}: ERROR {e.sqlstate} {e}")

    def activity_task(self, task):
        self.stats["activity_tasks"] += 1
        wid = task["workflow_id"]
        log(self.name, f"{wid}: activity {task['name']} (seq {task['seq']}) "
                       f"attempt {task['attempt']}")
        try:
            try:
                result = run_activity(self.conn, task)
            except psycopg.Error:
                raise
            except Exception as e:
                self.conn.execute("SELECT durable.task_fail(%s::bigint, %s::jsonb, true)",
                                  (task["token"], Jsonb({"type": type(e).__name__,
                                                         "message": str(e)})))
                return
            self.conn.execute("SELECT durable.task_complete(%s::bigint, %s::jsonb)",
                              (task["token"], Jsonb(result)))
        except psycopg.Error as e:
            if is_stale(e):
                self.stats["stale"] += 1
                log(self.name, f"{wid}: activity {task['name']}: lost the lease ({e})")
            else:
                self.stats["errors"] += 1
                log(self.name, f"{wid}: activity {task['name']}: ERROR {e.sqlstate} {e}")

    def wait(self, timeout):
        """Sleep until a NOTIFY arrives or timeout passes."""
        if self.woken:
            self.woken = False
            return
        r, _, _ = select.select([self.conn.fileno()], [], [], timeout)
        if r:
            self.conn.execute("SELECT 1")     # let psycopg read the notifications
        self.woken = False

    def run(self):
        log(self.name, f"started (mode {self.mode}, queues {self.queues}, lease {self.lease})")
        idle_since = time.monotonic()
        while not self.stop:
            worked = False
            if self.mode in ("workflow", "all"):
                for task in self.poll(self.queue):
                    worked = True
                    self.workflow_task(task)
            if self.stop:
                break
            if self.mode in ("activity", "all"):
                for task in self.poll(self.activity_queue):
                    worked = True
                    self.activity_task(task)
            if worked:
                idle_since = time.monotonic()
                continue
            if self.exit_when_idle and time.monotonic() - idle_since > self.exit_when_idle:
                break
            self.wait(1.0)
        log(self.name, "stats " + json.dumps(self.stats))
        self.conn.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=["workflow", "activity", "all"], default="all")
    p.add_argument("--queue", default="e2e")
    p.add_argument("--activity-queue", default="e2e_act")
    p.add_argument("--name", default=f"worker-{os.getpid()}")
    p.add_argument("--lease", default="2 s")
    p.add_argument("--pause-after", default=os.environ.get("E2E_PAUSE_AFTER"))
    p.add_argument("--pause-inside", default=os.environ.get("E2E_PAUSE_INSIDE"))
    p.add_argument("--pause-seconds", type=float,
                   default=float(os.environ.get("E2E_PAUSE_SECONDS", "30")))
    p.add_argument("--exit-when-idle", type=float, default=0)
    args = p.parse_args()

    w = Worker(args)

    def on_term(signum, frame):
        w.stop = True
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    w.run()


if __name__ == "__main__":
    sys.exit(main())
