#!/usr/bin/env python3
"""test/conformance/run.py: the SDK conformance suite of durable.

    python3 test/conformance/run.py [--dsn DSN] [--jobs N] [--scenario NAME]...
                                    [--sdk NAME=COMMAND]... [python] [typescript]

For every SDK named (default: python and typescript) and every scenario of
test/conformance/scenarios/*.json, it starts the SDK's conformance worker
as a real OS process on a queue of its own, drives the scenario through SQL
(start, signals, cancel, pause, kill -9 of the worker, a fresh worker ...),
waits for the runs to close, then reads durable.wf_history() of every
workflow id of the scenario, normalises it and compares it event by event
with the scenario's expected history; also the runs' final status, output
or error, SQL checks and the worker's MARK lines.  Prints a diff for each
mismatch and "N passed, M failed" per SDK; the exit status is 1 when
anything failed.  README.md describes the scenarios, the normalisation and
the worker contract.

The connection is the libpq environment (PG*) or --dsn; the database gets
the extension (if missing) and a table conformance_effects.  Needs
python3-psycopg only (and node for the TypeScript SDK).
"""

import argparse
import difflib
import glob
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import Jsonb

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
TS_SDK = os.path.join(ROOT, "clients", "typescript")
TS_WORKER_DIR = os.path.join(HERE, "typescript")
TSC = os.path.join(TS_SDK, "node_modules", ".bin", "tsc")

# The SDKs the suite knows.  A new SDK joins with an entry here (or, to try
# it out, --sdk NAME=COMMAND): the command that starts its conformance
# worker, and the names of the SDK's private local journal entries, which
# the comparison leaves out (README.md, "Normalisation").
SDKS = {
    "python": {
        "command": [sys.executable, "-B", os.path.join(HERE, "python", "worker.py")],
        "private_steps": [],
    },
    "typescript": {
        "command": ["node", os.path.join(TS_WORKER_DIR, "build", "worker.mjs")],
        # clients/typescript/README.md, "How replay works"
        "private_steps": ["$now", "$seed", "$resolved", "$cancel_requested"],
        "prepare": lambda: build_typescript(),
    },
}

LEASE = 2               # seconds: the workers' lease (short: kill -9 recovers fast)
WAIT = 30               # seconds: the longest any wait of the driver may take
STOP_WAIT = 10          # seconds a worker may take to stop after SIGTERM

# error objects are compared on these keys only: the protocol (section 6)
# lets an SDK add any other keys (stack, traceback, sqlstate ...)
ERROR_KEYS = ("type", "message", "timeout_type", "cancel_reason")

MARK_RE = re.compile(r"^MARK (\S+) (\S+)\s*$")


class Failure(Exception):
    pass


# -- building the TypeScript worker -----------------------------------------

def _newest(paths):
    return max((os.path.getmtime(p) for p in paths if os.path.exists(p)), default=0)


def build_typescript():
    """Build the SDK (npm run build) if its dist is missing or older than
    its sources, then the conformance worker with the SDK's own tsc."""
    if not os.path.exists(TSC):
        raise Failure("%s is missing: run `npm ci` in clients/typescript" % TSC)
    dist = os.path.join(TS_SDK, "dist", "src", "index.js")
    sources = glob.glob(os.path.join(TS_SDK, "src", "*.ts")) + [
        os.path.join(TS_SDK, "tsconfig.json"), os.path.join(TS_SDK, "package.json")]
    if not os.path.exists(dist) or os.path.getmtime(dist) < _newest(sources):
        print("building the TypeScript SDK (npm run build)", flush=True)
        _run(["npm", "run", "build", "--silent"], TS_SDK)
    out = os.path.join(TS_WORKER_DIR, "build", "worker.mjs")
    inputs = glob.glob(os.path.join(TS_WORKER_DIR, "src", "*.mts")) + [
        os.path.join(TS_WORKER_DIR, "tsconfig.json")] + glob.glob(os.path.join(TS_SDK, "dist", "src", "*.d.ts"))
    if not os.path.exists(out) or os.path.getmtime(out) < _newest(inputs):
        print("building the TypeScript conformance worker (tsc)", flush=True)
        _run([TSC, "-p", TS_WORKER_DIR], ROOT)


def _run(cmd, cwd):
    p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        raise Failure("%s failed (exit %d):\n%s" % (" ".join(cmd), p.returncode, p.stdout))


# -- normalisation ----------------------------------------------------------

def subst(value, names):
    """The scenario with its placeholders (${wid}, ${queue}) filled in."""
    if isinstance(value, str):
        for k, v in names.items():
            value = value.replace("${%s}" % k, v)
        return value
    if isinstance(value, list):
        return [subst(v, names) for v in value]
    if isinstance(value, dict):
        return {subst(k, names): subst(v, names) for k, v in value.items()}
    return value


def norm_error(err):
    if not isinstance(err, dict):
        return err
    return {k: err[k] for k in ERROR_KEYS if k in err}


def norm_errors(value):
    """Every object under an "error" key, anywhere, keeps ERROR_KEYS only."""
    if isinstance(value, dict):
        return {k: norm_error(norm_errors(v)) if k == "error" else norm_errors(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [norm_errors(v) for v in value]
    return value


def normalise(rows, private_steps):
    """wf_history rows -> [run, event_type, seq, details]: run ids become
    1, 2, 3 ... in run_id order (and "$run<n>" inside details), event
    times go, error objects keep ERROR_KEYS, and the SDK's private local
    entries are left out, the later seqs of their run moved down to close
    the gap."""
    runs = {}
    for r in rows:
        runs.setdefault(r[0], len(runs) + 1)
    private = {}                        # run -> sorted seqs left out
    for run_id, _, event_type, seq, details in rows:
        if event_type == "step_recorded" and isinstance(details, dict) \
                and details.get("name") in private_steps:
            private.setdefault(run_id, []).append(seq)
    out = []
    for run_id, _, event_type, seq, details in rows:
        gone = private.get(run_id, [])
        if seq is not None and seq in gone:
            continue
        if seq is not None:
            seq -= sum(1 for s in gone if s < seq)
        if isinstance(details, dict):
            details = dict(details)
            for k in ("run_id", "new_run_id"):
                if k in details:
                    details[k] = "$run%d" % runs[details[k]] if details[k] in runs else "$run?"
        out.append([runs[run_id], event_type, seq, norm_errors(details)])
    return out


def event_line(e):
    run, event_type, seq, details = e
    return "run %s  %-26s seq %-4s %s" % (run, event_type, "-" if seq is None else seq,
                                          json.dumps(details, sort_keys=True))


# -- one scenario on one SDK ------------------------------------------------

class Scenario:
    def __init__(self, path):
        with open(path) as f:
            self.spec = json.load(f)
        self.file = os.path.basename(path)
        self.name = self.spec["name"]


class Run:
    """One scenario against one SDK: its own queue, workflow ids, workers."""

    def __init__(self, sdk_name, sdk, scenario, index, dsn, env, logdir):
        tag = secrets.token_hex(3)
        self.sdk_name, self.sdk, self.scenario = sdk_name, sdk, scenario
        self.names = {"wid": "conf-%s-%s-%s" % (sdk_name, scenario.name, tag),
                      "queue": "conf.%s.%d.%s" % (sdk_name[:12], index, tag)}
        self.spec = subst(scenario.spec, self.names)
        self.dsn, self.env = dsn, env
        self.dir = os.path.join(logdir, "%s-%s" % (sdk_name, scenario.name))
        os.makedirs(self.dir, exist_ok=True)
        self.workers = []               # [name, Popen, log file, state]
        self.out = []                   # report lines

    # workers
    def start_worker(self, variant=""):
        name = "worker-%d" % (len(self.workers) + 1)
        logf = open(os.path.join(self.dir, name + ".log"), "w")
        env = dict(self.env, CONFORMANCE_QUEUE=self.names["queue"], CONFORMANCE_LEASE=str(LEASE),
                   CONFORMANCE_VARIANT=variant, CONFORMANCE_WORKER_NAME="%s-%s" % (self.names["wid"], name))
        p = subprocess.Popen(self.sdk["command"], stdout=logf, stderr=subprocess.STDOUT, env=env,
                             cwd=ROOT, start_new_session=True)
        self.workers.append([name, p, logf, "running"])
        self.note("started %s (pid %d)%s" % (name, p.pid, " variant %s" % variant if variant else ""))

    def current(self):
        for w in reversed(self.workers):
            if w[3] == "running":
                return w
        raise Failure("no worker is running")

    def kill_worker(self):
        w = self.current()
        os.kill(w[1].pid, signal.SIGKILL)      # kill -9: no chance to clean up
        w[1].wait()
        w[3] = "killed"
        self.note("killed %s with SIGKILL" % w[0])

    def stop_worker(self, w=None):
        """SIGTERM; the worker must exit with status 0 within STOP_WAIT."""
        w = w or self.current()
        w[1].send_signal(signal.SIGTERM)
        try:
            rc = w[1].wait(timeout=STOP_WAIT)
        except subprocess.TimeoutExpired:
            w[1].kill()
            w[1].wait()
            w[3] = "killed"
            raise Failure("%s did not stop within %d s of SIGTERM" % (w[0], STOP_WAIT))
        w[3] = "stopped"
        if rc != 0:
            raise Failure("%s exited with status %s after SIGTERM (expected 0)" % (w[0], rc))
        self.note("stopped %s with SIGTERM (exit 0)" % w[0])

    def cleanup_workers(self):
        for w in self.workers:
            if w[3] == "running":
                try:
                    w[1].kill()
                    w[1].wait()
                except OSError:
                    pass
            w[2].close()

    def marks(self):
        counts = {}
        for w in self.workers:
            w[2].flush()
            with open(os.path.join(self.dir, w[0] + ".log"), errors="replace") as f:
                for line in f:
                    m = MARK_RE.match(line)
                    if m and m.group(1) == self.names["wid"]:
                        counts[m.group(2)] = counts.get(m.group(2), 0) + 1
        return counts

    def note(self, msg):
        self.out.append("    . %s" % msg)

    # waiting
    def wait_for(self, what, fn, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while True:
            v = fn()
            if v:
                return v
            if time.monotonic() > deadline:
                raise Failure("timed out after %d s waiting for %s" % (timeout, what))
            time.sleep(0.05)

    def latest(self, conn, wid):
        return conn.execute("SELECT run_id, status, output, error FROM durable.workflows"
                            " WHERE workflow_id = %s ORDER BY run_id DESC LIMIT 1", (wid,)).fetchone()

    # the driver
    def act(self, conn, a):
        do = a["do"]
        if do == "wait_pending":
            wid = a["workflow"]
            self.wait_for("step %s of %s to be pending" % (a["seq"], wid), lambda: conn.execute(
                "SELECT 1 FROM durable.journal WHERE workflow_id = %s AND seq = %s AND status = 'pending'"
                " AND run_id = (SELECT max(run_id) FROM durable.workflows WHERE workflow_id = %s)",
                (wid, a["seq"], wid)).fetchone())
        elif do == "wait_mark":
            self.wait_for("the worker to print MARK %s %s" % (self.names["wid"], a["mark"]),
                          lambda: self.marks().get(a["mark"]))
        elif do == "wait_event":
            self.wait_for("event %s of %s" % (a["event_type"], a["workflow"]), lambda: conn.execute(
                "SELECT 1 FROM durable.wf_history(%s) WHERE event_type = %s",
                (a["workflow"], a["event_type"])).fetchone())
        elif do == "wait_closed":
            self.wait_closed(conn, a["workflow"])
        elif do == "signal":
            conn.execute("SELECT durable.wf_signal(%s, %s, %s)",
                         (a["workflow"], a["name"], Jsonb(a.get("payload"))))
        elif do == "cancel":
            conn.execute("SELECT durable.wf_cancel(%s, %s)", (a["workflow"], a.get("reason")))
        elif do == "terminate":
            conn.execute("SELECT durable.wf_terminate(%s, %s)", (a["workflow"], a.get("reason")))
        elif do == "pause":
            conn.execute("SELECT durable.wf_pause(%s, %s)", (a["workflow"], a.get("reason")))
        elif do == "unpause":
            conn.execute("SELECT durable.wf_unpause(%s, %s)", (a["workflow"], a.get("reason")))
        elif do == "kill_worker":
            self.kill_worker()
        elif do == "stop_worker":
            self.stop_worker()
        elif do == "start_worker":
            self.start_worker(a.get("variant", ""))
        else:
            raise Failure("unknown driver action %r" % do)
        if do not in ("kill_worker", "stop_worker", "start_worker"):
            self.note(json.dumps(a, sort_keys=True))

    def wait_closed(self, conn, wid):
        def closed():
            r = self.latest(conn, wid)
            return r is not None and r[1] != "running"
        self.wait_for("%s to close" % wid, closed)

    # the whole scenario
    def execute(self):
        spec = self.spec
        conn = psycopg.connect(self.dsn, autocommit=True)
        try:
            self.start_worker()
            conn.execute("SELECT durable.wf_start(%s, %s, %s, %s)",
                         (spec["workflow"], Jsonb(spec.get("input")), self.names["wid"], self.names["queue"]))
            for a in spec.get("driver", []):
                self.act(conn, a)
            for wid in spec["workflows"]:
                self.wait_closed(conn, wid)
            for w in self.workers:
                if w[3] == "running":
                    self.stop_worker(w)
            return self.compare(conn)
        finally:
            try:
                # leave nothing running behind (after a failure)
                for (wid,) in conn.execute(
                        "SELECT workflow_id FROM durable.workflows WHERE starts_with(workflow_id, %s)"
                        " AND status = 'running'", (self.names["wid"],)).fetchall():
                    conn.execute("SELECT durable.wf_terminate(%s, 'conformance run over')", (wid,))
            except psycopg.Error:
                pass
            conn.close()

    def compare(self, conn):
        problems = []
        for wid, want in self.spec["workflows"].items():
            rows = conn.execute("SELECT run_id, event_time, event_type, seq, details"
                                " FROM durable.wf_history(%s)", (wid,)).fetchall()
            got = normalise(rows, self.sdk.get("private_steps", []))
            expected = [list(e) for e in want["history"]]
            if got != expected:
                diff = difflib.unified_diff([event_line(e) for e in expected], [event_line(e) for e in got],
                                            "expected", "actual", lineterm="", n=100)
                problems.append("history of %s differs:\n%s" % (wid, "\n".join("      " + d for d in diff)))
            run = self.latest(conn, wid)
            status, output, error = run[1], run[2], norm_error(run[3])
            if status != want["status"]:
                problems.append("%s: status %s, expected %s" % (wid, status, want["status"]))
            if "output" in want and output != want["output"]:
                problems.append("%s: output %s, expected %s" % (wid, json.dumps(output), json.dumps(want["output"])))
            if "error" in want and error != want["error"]:
                problems.append("%s: error %s, expected %s" % (wid, json.dumps(error), json.dumps(want["error"])))
        extra = [r[0] for r in conn.execute(
            "SELECT DISTINCT workflow_id FROM durable.workflows WHERE starts_with(workflow_id, %s) ORDER BY 1",
            (self.names["wid"],)).fetchall() if r[0] not in self.spec["workflows"]]
        if extra:
            problems.append("workflow ids the scenario does not expect: %s" % ", ".join(extra))
        for check in self.spec.get("checks", []):
            rows = [list(r) for r in conn.execute(check["sql"]).fetchall()]
            if rows != check["expect"]:
                problems.append("check %r: %s, expected %s" % (check["sql"], rows, check["expect"]))
        if "marks" in self.spec:
            marks = self.marks()
            if marks != self.spec["marks"]:
                problems.append("MARK lines %s, expected %s" % (json.dumps(marks, sort_keys=True),
                                                                json.dumps(self.spec["marks"], sort_keys=True)))
        return problems


class Ticker(threading.Thread):
    """durable.tick() every 100 ms, for a database no background worker
    serves (no preloading, or no free max_worker_processes slot): timers,
    retries' backoffs and lease expiries then still come due."""

    def __init__(self, dsn):
        super().__init__(daemon=True)
        self.dsn, self.stop = dsn, threading.Event()

    def run(self):
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stop.wait(0.1):
                conn.execute("SELECT durable.tick()")


def served_by_background_worker(conn):
    return conn.execute("SELECT EXISTS (SELECT FROM pg_stat_activity WHERE backend_type = 'durable worker'"
                        " AND datname = current_database())").fetchone()[0]


def run_one(sdk_name, sdk, scenario, index, args, env, logdir):
    r = Run(sdk_name, sdk, scenario, index, args.dsn, env, logdir)
    start = time.monotonic()
    try:
        problems = r.execute()
    except Failure as e:
        problems = [str(e)]
    except Exception as e:                      # psycopg errors, bugs of the runner
        problems = ["%s: %s" % (type(e).__name__, e)]
    finally:
        r.cleanup_workers()
    lines = ["%s %s/%s (%.1f s)" % ("ok  " if not problems else "FAIL", sdk_name, scenario.name,
                                    time.monotonic() - start)]
    if problems or args.verbose:
        lines += r.out
        lines += ["    " + p for p in problems]
    if problems:
        for w in r.workers:
            with open(os.path.join(r.dir, w[0] + ".log"), errors="replace") as f:
                text = f.read().splitlines()
            lines.append("    ----- %s (%s), last lines of its log -----" % (w[0], w[3]))
            lines += ["      " + t for t in text[-40:]]
    return sdk_name, scenario.name, not problems, lines


def pg_env(dsn):
    """The worker's connection: the libpq environment variables."""
    env = dict(os.environ)
    keys = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "dbname": "PGDATABASE",
            "password": "PGPASSWORD", "sslmode": "PGSSLMODE"}
    for k, v in conninfo_to_dict(dsn).items():
        if k not in keys:
            raise Failure("--dsn: %s= cannot be handed to the workers (use PG* variables)" % k)
        env[keys[k]] = str(v)
    return env


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sdks", nargs="*", help="SDKs to test (default: python typescript)")
    ap.add_argument("--dsn", default="", help="libpq connection string (default: the PG* environment)")
    ap.add_argument("--scenario", action="append", help="run only this scenario (repeatable)")
    ap.add_argument("--sdk", action="append", default=[], metavar="NAME=COMMAND",
                    help="an SDK not in SDKS: the command that starts its conformance worker")
    ap.add_argument("--private-step", action="append", default=[], metavar="NAME",
                    help="a private local entry name of the --sdk SDKs")
    ap.add_argument("--jobs", type=int, default=4, help="scenarios run at once (default 4)")
    ap.add_argument("--verbose", "-v", action="store_true", help="show the driver's steps of passing scenarios too")
    ap.add_argument("--keep-logs", action="store_true", help="keep the workers' logs")
    args = ap.parse_args()

    sdks = dict(SDKS)
    for s in args.sdk:
        name, _, cmd = s.partition("=")
        sdks[name] = {"command": shlex.split(cmd), "private_steps": args.private_step}
    chosen = args.sdks or ([s.partition("=")[0] for s in args.sdk] or ["python", "typescript"])
    for s in chosen:
        if s not in sdks:
            ap.error("unknown SDK %r (known: %s)" % (s, ", ".join(sdks)))

    scenarios = [Scenario(p) for p in sorted(glob.glob(os.path.join(HERE, "scenarios", "*.json")))]
    if args.scenario:
        unknown = set(args.scenario) - {s.name for s in scenarios}
        if unknown:
            ap.error("unknown scenario(s): %s" % ", ".join(sorted(unknown)))
        scenarios = [s for s in scenarios if s.name in args.scenario]

    try:
        env = pg_env(args.dsn)
        with psycopg.connect(args.dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS durable")
            conn.execute("CREATE TABLE IF NOT EXISTS conformance_effects"
                         " (workflow_id text NOT NULL, effect text NOT NULL, amount int)")
            ticker = None
            if not served_by_background_worker(conn):
                print("no durable background worker serves this database: calling durable.tick()"
                      " every 100 ms", flush=True)
                ticker = Ticker(args.dsn)
                ticker.start()
        for s in chosen:
            if "prepare" in sdks[s]:
                sdks[s]["prepare"]()
    except (Failure, psycopg.Error) as e:
        print("FAILED to set up: %s" % e, flush=True)
        return 1

    parent = os.environ.get("DURABLE_TMP")
    logdir = tempfile.mkdtemp(prefix="durable-conformance-",
                              dir=parent if parent and os.access(parent, os.W_OK) else None)
    lock = threading.Lock()
    results = {s: [] for s in chosen}
    started = time.monotonic()

    def job(item):
        index, (sdk_name, scenario) = item
        res = run_one(sdk_name, sdks[sdk_name], scenario, index, args, env, logdir)
        with lock:
            print("\n".join(res[3]), flush=True)
            results[sdk_name].append(res)

    work = list(enumerate((s, sc) for s in chosen for sc in scenarios))
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        list(pool.map(job, work))
    if ticker is not None:
        ticker.stop.set()

    print()
    failed = 0
    for s in chosen:
        ok = sum(1 for r in results[s] if r[2])
        bad = sorted(r[1] for r in results[s] if not r[2])
        failed += len(bad)
        print("%s: %d passed, %d failed%s" % (s, ok, len(bad), (" (%s)" % ", ".join(bad)) if bad else ""))
    print("%.1f s; worker logs %s" % (time.monotonic() - started,
                                      "in " + logdir if args.keep_logs or failed else "removed"), flush=True)
    if not args.keep_logs and not failed:
        shutil.rmtree(logdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
