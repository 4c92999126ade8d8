#!/usr/bin/env python3
"""test/e2e/test_chaos.py: 200 saga workflows, 4 worker processes, 10 kill -9.

The money transfers of examples/saga.py run on four SDK worker processes
(python3 -m durable_worker examples.saga, 2 s leases).  While they run the
test kills a busy worker with SIGKILL ten times, starting a fresh one
after each kill; the killed workers' tasks come back when their leases
expire.

Checks: every workflow has exactly one run and it completed with the
outcome its accounts call for; every SQL step (debit, complete, refund)
left exactly one row in saga_audit (written in the step's own
transaction); every credit activity ran at least once and credited at most
once; money is conserved and each balance matches the transfers; no
workflow task failed; nothing is left in the task table.  Prints the
counts, and how many killed workflow tasks had committed a transaction
step already (those replays return the recorded result).

The test is the same for every SDK: run(saga) takes what differs (the
worker command, the tables' prefix, the workflow type);
test_chaos_ts.py runs it on the TypeScript SDK.

Run as postgres with PG* pointing at a preloaded server (CHAOS_SEED=n to
repeat a run).
"""

import collections
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "clients", "python"))
sys.path.insert(0, REPO)

import psycopg  # noqa: E402
from e2e_common import TestFailure as Failure, check  # noqa: E402
from psycopg.types.json import Jsonb  # noqa: E402

N_WORKFLOWS = 200
N_WORKERS = 4
N_KILLS = 10
LEASE = "2"
ACCOUNTS = 20
FROZEN = 2                  # accounts that refuse credits: those transfers are refunded
OPENING = 100000


class PythonSaga:
    """examples/saga.py on the Python SDK's worker (python3 -m durable_worker)."""
    name = "test_chaos"
    tag = "chaos"               # of workflow ids, queue and accounts
    tables = "saga"             # saga_accounts, saga_transfers, saga_audit ...
    workflow = "transfer"
    cwd = REPO
    env = {"PYTHONPATH": os.pathsep.join([os.path.join(REPO, "clients", "python"), REPO])}

    def setup(self, conn):
        from examples import saga
        saga.setup(conn)

    def command(self, queue, name):
        return [sys.executable, "-m", "durable_worker", "--queue", queue, "--name", name, "--lease", LEASE,
                "--concurrency", "4", "--poll-interval", "1", "examples.saga"]


class Pool:
    """The worker processes, by slot; every process started is kept for its log."""

    def __init__(self, saga, tag):
        self.saga, self.tag = saga, tag
        self.dir = tempfile.mkdtemp(prefix="durable-%s-" % saga.name)
        self.live = {}              # slot -> Popen
        self.all = []
        self.generation = 0
        self.env = dict(os.environ, **saga.env)

    def start(self, slot):
        self.generation += 1
        name = "%s-w%d-g%d" % (self.tag, slot, self.generation)
        log = open(os.path.join(self.dir, name + ".log"), "w")
        p = subprocess.Popen(self.saga.command(self.tag, name),
                             stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.saga.cwd)
        p.name, p.logfile = name, log.name
        self.live[slot] = p
        self.all.append(p)

    def stop(self):
        for p in self.live.values():
            p.send_signal(signal.SIGTERM)
        for p in self.live.values():
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def dump(self):
        for p in self.all:
            with open(p.logfile) as f:
                print("----- %s -----\n%s" % (p.name, f.read()[-4000:]))


def test(conn, pool, rng, saga, tag):
    queue, tables = tag, saga.tables
    saga.setup(conn)
    accounts = ["%s-acct%02d" % (tag, i) for i in range(ACCOUNTS)]
    frozen = set(accounts[:FROZEN])
    for a in accounts:
        conn.execute("INSERT INTO %s_accounts VALUES (%%s, %%s, %%s) "
                     "ON CONFLICT (id) DO UPDATE SET balance = excluded.balance, frozen = excluded.frozen" % tables,
                     (a, OPENING, a in frozen))

    transfers = []
    for i in range(N_WORKFLOWS):
        src, dst = rng.sample(accounts[FROZEN:], 1)[0], rng.choice(accounts)
        while dst == src:
            dst = rng.choice(accounts)
        transfers.append({"id": "%s-t%03d" % (tag, i), "from": src, "to": dst,
                          "amount": rng.randint(1, 50), "delay": round(rng.uniform(0.3, 0.9), 2),
                          # more attempts than kills: no kill can exhaust a credit's retries
                          "heartbeat_timeout": "2s", "max_attempts": N_KILLS + 2})

    for slot in range(N_WORKERS):
        pool.start(slot)
    with conn.transaction():
        for tr in transfers:
            conn.execute("SELECT durable.wf_start(%s, %s, %s, %s)",
                         (saga.workflow, Jsonb(tr), "transfer-" + tr["id"], queue))
    print("started %d transfers on queue %s; %d workers, lease %s s" % (N_WORKFLOWS, queue, N_WORKERS, LEASE),
          flush=True)
    t0 = time.monotonic()

    hit = collections.Counter()
    for k in range(N_KILLS):
        time.sleep(rng.uniform(0.4, 0.9))
        # alternately a worker holding an activity and one holding a workflow
        # task (a fresh worker may still be starting up: it holds nothing);
        # any worker if none holds the wanted kind within 3 s
        want_kind = ("activity", "workflow")[k % 2]
        deadline = time.monotonic() + 3
        while True:
            held = collections.defaultdict(collections.Counter)
            for worker, kind, n in conn.execute(
                    "SELECT worker, kind, count(*) FROM durable.task_list "
                    " WHERE queue = %s AND state = 'leased' GROUP BY 1, 2", (queue,)):
                held[worker][kind] = n
            cands = [s for s, p in sorted(pool.live.items()) if held[p.name][want_kind]]
            if cands or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        slot = rng.choice(cands or sorted(pool.live))
        victim = pool.live.pop(slot)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        pool.start(slot)
        holding = held[victim.name]
        for kind in holding:
            hit[kind] += 1
        print("kill %2d at %5.1f s: %s holding %d workflow and %d activity task(s); started a new worker"
              % (k + 1, time.monotonic() - t0, victim.name, holding["workflow"], holding["activity"]),
              flush=True)

    ids = ["transfer-" + t["id"] for t in transfers]
    deadline = time.monotonic() + 60
    while True:
        open_runs = conn.execute("SELECT count(*) FROM durable.workflows WHERE workflow_id = ANY(%s) "
                                 "   AND status = 'running'", (ids,)).fetchone()[0]
        if open_runs == 0:
            break
        if time.monotonic() > deadline:
            raise Failure("%d workflows still running 60 s after the last kill" % open_runs)
        time.sleep(0.2)
    print("all workflows closed %.1f s after the start" % (time.monotonic() - t0), flush=True)

    # -- exactly one run per workflow, completed, with the right outcome
    runs = collections.defaultdict(list)
    for wid, status, output in conn.execute(
            "SELECT workflow_id, status, output FROM durable.workflows WHERE workflow_id = ANY(%s) "
            " ORDER BY run_id", (ids,)):
        runs[wid].append((status, output))
    check(all(len(runs[w]) == 1 for w in ids), "every workflow has exactly one run")
    statuses = collections.Counter(r[0][0] for r in runs.values())
    print("run statuses: %s" % dict(statuses))
    check(statuses == {"completed": N_WORKFLOWS}, "all %d runs completed" % N_WORKFLOWS)
    want = {t["id"]: ("refunded" if t["to"] in frozen else "completed") for t in transfers}
    got = {t["id"]: runs["transfer-" + t["id"]][0][1]["status"] for t in transfers}
    outcomes = collections.Counter(got.values())
    print("outcomes: %s" % dict(outcomes))
    check(got == want, "each transfer ended as its accounts call for (frozen destination: refunded)")
    db_status = dict(conn.execute("SELECT id, status FROM %s_transfers WHERE id = ANY(%%s)" % tables,
                                  ([tr["id"] for tr in transfers],)).fetchall())
    check(db_status == got, "the %s_transfers table agrees with the workflow results" % tables)

    # -- SQL steps exactly once
    audit = collections.Counter()
    for tid, step, n in conn.execute("SELECT transfer_id, step, count(*) FROM %s_audit "
                                     " WHERE transfer_id = ANY(%%s) GROUP BY 1, 2" % tables,
                                     ([tr["id"] for tr in transfers],)):
        audit[(tid, step)] = n
    per_step = collections.defaultdict(collections.Counter)
    for (tid, step), n in audit.items():
        per_step[step][n] += 1
    print("transaction steps (step: {times executed: transfers}): %s"
          % {s: dict(c) for s, c in sorted(per_step.items())})
    expected_steps = {}
    for t in transfers:
        expected_steps[(t["id"], "debit")] = 1
        expected_steps[(t["id"], "refund" if want[t["id"]] == "refunded" else "complete")] = 1
    check(dict(audit) == expected_steps,
          "every transaction step ran exactly once (%d step executions for %d steps)"
          % (sum(audit.values()), len(expected_steps)))

    # -- activities at least once, credited at most once
    calls = dict(conn.execute("SELECT transfer_id, n FROM %s_calls WHERE activity = 'credit' "
                              "   AND transfer_id = ANY(%%s)" % tables, ([tr["id"] for tr in transfers],)).fetchall())
    hist = collections.Counter(calls.values())
    print("credit activity executions: %d for %d transfers; {executions: transfers} = %s"
          % (sum(calls.values()), len(calls), dict(sorted(hist.items()))))
    check(len(calls) == N_WORKFLOWS and min(calls.values()) >= 1, "every credit activity ran at least once")
    credits = dict(conn.execute("SELECT transfer_id, amount FROM %s_credits WHERE transfer_id = ANY(%%s)" % tables,
                                ([tr["id"] for tr in transfers],)).fetchall())
    check(set(credits) == {tr["id"] for tr in transfers if want[tr["id"]] == "completed"},
          "exactly the completed transfers were credited, once each (%d)" % len(credits))

    # -- money
    balances = dict(conn.execute("SELECT id, balance FROM %s_accounts WHERE id = ANY(%%s)" % tables,
                                 (accounts,)).fetchall())
    expect = {a: OPENING for a in accounts}
    for t in transfers:
        if want[t["id"]] == "completed":
            expect[t["from"]] -= t["amount"]
            expect[t["to"]] += t["amount"]
    check(sum(balances.values()) == OPENING * ACCOUNTS, "money is conserved (%d)" % sum(balances.values()))
    check(balances == expect, "every balance matches the completed transfers")

    # -- the kills really interrupted work
    ev = collections.Counter(dict(conn.execute(
        "SELECT h.event_type, count(*) FROM durable.history h WHERE h.workflow_id = ANY(%s) "
        "   AND h.event_type IN ('workflow_task_timed_out', 'activity_attempt_timed_out', 'activity_attempt_failed', "
        "                        'workflow_task_failed') GROUP BY 1", (ids,)).fetchall()))
    print("history: %s; kills of a worker holding workflow tasks: %d, activities: %d (of %d kills)"
          % (dict(ev), hit["workflow"], hit["activity"], N_KILLS))
    check(ev["workflow_task_timed_out"] + ev["activity_attempt_timed_out"] >= 1,
          "the kills left leases to expire (their tasks were redone elsewhere)")
    # killed workflow tasks that had committed a transaction step already
    # (the step's checkpoint is the last event before the lease expired):
    # their replays returned the recorded result without running it again
    after_step = collections.Counter(dict(conn.execute(
        "SELECT prev_name, count(*) FROM ("
        "  SELECT event_type, lag(event_type) OVER w AS prev_type, lag(details->>'name') OVER w AS prev_name"
        "    FROM durable.history WHERE workflow_id = ANY(%s)"
        "  WINDOW w AS (PARTITION BY workflow_id, run_id ORDER BY event_time)) e"
        " WHERE event_type = 'workflow_task_timed_out' AND prev_type = 'step_recorded' GROUP BY 1",
        (ids,)).fetchall()))
    print("workflow tasks killed after their transaction step committed (replayed, not re-run): %d %s"
          % (sum(after_step.values()), dict(after_step)))
    if ev["workflow_task_failed"]:
        for wid, details in conn.execute(
                "SELECT h.workflow_id, h.details FROM durable.history h WHERE h.workflow_id = ANY(%s) "
                "   AND h.event_type = 'workflow_task_failed' ORDER BY h.workflow_id LIMIT 5", (ids,)):
            print("  workflow_task_failed %s: %s" % (wid, details))
    check(ev["workflow_task_failed"] == 0, "no workflow task failed (a kill only makes leases expire)")
    left = conn.execute("SELECT count(*) FROM durable.tasks WHERE queue = %s", (queue,)).fetchone()[0]
    check(left == 0, "no task is left in the hot table")


def run(saga):
    """The test with one SDK's saga worker; the exit status."""
    seed = int(os.environ.get("CHAOS_SEED", random.randrange(1 << 30)))
    print("seed %d (CHAOS_SEED=%d to repeat)" % (seed, seed))
    rng = random.Random(seed)
    tag = "%s%d" % (saga.tag, os.getpid())
    pool = Pool(saga, tag)
    rc = 0
    start = time.monotonic()
    try:
        with psycopg.connect("", autocommit=True) as conn:
            test(conn, pool, rng, saga, tag)
    except Failure as e:
        print("FAILED: %s" % e)
        rc = 1
    except Exception as e:
        import traceback
        traceback.print_exc()
        print("FAILED with %s: %s" % (type(e).__name__, e))
        rc = 1
    finally:
        pool.stop()
        if rc:
            pool.dump()
        else:
            shutil.rmtree(pool.dir, ignore_errors=True)
    print("%s: %s in %.1f s" % (saga.name, "PASS" if rc == 0 else "FAIL", time.monotonic() - start))
    print("PASS" if rc == 0 else "FAIL")
    return rc


if __name__ == "__main__":
    sys.exit(run(PythonSaga()))
