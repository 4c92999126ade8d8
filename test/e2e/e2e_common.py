"""test/e2e/e2e_common.py: helpers shared by the Python end-to-end tests.

The tests run as the postgres user with PGHOST/PGPORT/PGUSER/PGDATABASE
pointing at a fresh cluster that preloads durable (background worker on,
naptime 200ms) and has no extension yet.  Workers are real OS processes
(test/e2e/worker.py) whose output goes to log files that are printed when
a test fails.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import psycopg
from psycopg.rows import dict_row

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "worker.py")


class TestFailure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)
    print(f"ok: {msg}", flush=True)


def connect():
    return psycopg.connect("", autocommit=True, row_factory=dict_row,
                           application_name="e2e-test")


def setup_database(conn):
    """Create the extension (once) and a fresh counters table."""
    conn.execute("CREATE EXTENSION IF NOT EXISTS durable")
    conn.execute("DROP TABLE IF EXISTS e2e_counters")
    conn.execute("CREATE TABLE e2e_counters (step text PRIMARY KEY, n int NOT NULL)")


def counters(conn, prefix=""):
    rows = conn.execute("SELECT step, n FROM e2e_counters WHERE step LIKE %s ORDER BY step",
                        (prefix + "%",)).fetchall()
    return {r["step"]: r["n"] for r in rows}


def wait_for(what, fn, timeout=30.0, interval=0.05):
    """Call fn until it returns something true; fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TestFailure(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Workers:
    """Start worker processes; stop them and show their logs at the end."""

    def __init__(self):
        parent = os.environ.get("DURABLE_TMP")
        if not parent or not os.access(parent, os.W_OK):
            parent = None
        self.dir = tempfile.mkdtemp(prefix="durable-e2e-", dir=parent)
        self.procs = {}

    def start(self, name, *args, env=None):
        logf = open(os.path.join(self.dir, name + ".log"), "w")
        e = dict(os.environ)
        e.update(env or {})
        p = subprocess.Popen([sys.executable, WORKER, "--name", name, *args],
                             stdout=logf, stderr=subprocess.STDOUT, env=e)
        self.procs[name] = (p, logf)
        return p

    def log(self, name):
        with open(os.path.join(self.dir, name + ".log")) as f:
            return f.read()

    def stop_all(self):
        for name, (p, logf) in self.procs.items():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for name, (p, logf) in self.procs.items():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            logf.close()

    def dump_logs(self):
        for name in self.procs:
            print(f"----- log of worker {name} -----")
            print(self.log(name), end="")
        print("-----")


def main(test):
    """Run test(conn, workers); exit 0 on success, 1 with a message otherwise."""
    workers = Workers()
    rc = 0
    try:
        with connect() as conn:
            setup_database(conn)
            test(conn, workers)
    except TestFailure as e:
        print(f"FAILED: {e}", flush=True)
        rc = 1
    except Exception as e:         # psycopg errors, bugs in the test
        print(f"FAILED with {type(e).__name__}: {e}", flush=True)
        import traceback
        traceback.print_exc()
        rc = 1
    finally:
        workers.stop_all()
        if rc != 0:
            workers.dump_logs()
        else:
            shutil.rmtree(workers.dir, ignore_errors=True)
    print("PASS" if rc == 0 else "FAIL", flush=True)
    sys.exit(rc)
