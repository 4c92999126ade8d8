#!/usr/bin/env python3
"""test/e2e/test_readme.py: every example in README.md runs as written.

    python3 test/e2e/test_readme.py [README]   (default: the repository's README.md)

Run as postgres with PG* pointing at a server that preloads durable, as
test/run does.  The test creates a fresh database, points PGDATABASE at it
and runs the README's fenced code blocks in document order, each in its own
process with the repository root as working directory, so a block runs in
the state the blocks above it left (their workflows, roles, tables).  The
fence's language says how:

  ```sql                  psql -X -v ON_ERROR_STOP=1 -f BLOCK (one session
                          per block: \gset variables do not carry over)
  ```sh ```bash ```shell  bash -e -o pipefail BLOCK
  ```python ```py         python3 BLOCK, with PYTHONPATH=clients/python
  any other language      not run: ```conf for postgresql.conf lines,
                          ```text for output, whatever is not to be pasted
  none                    an error: say what the block is

A block fails when it exits non-zero or still runs after BLOCK_TIMEOUT
seconds.  Blocks run with PSQLRC=/dev/null, no PYTHONPATH in sql and sh
blocks (a block sets what it needs), and the directory of the python3 that
runs this test first on PATH.  Processes a block leaves running (workers
started with &) are stopped after the last block; the database and the
roles the blocks created are dropped.

An HTML comment (GitHub does not show it) on the line before a fence says
more about its block:

  <!-- readme-test: skip (REASON) -->  not run: commands that need root or
        install software.  A sh block that calls sudo, apt-get, apt, make,
        initdb, pg_ctl, pg_ctlcluster, systemctl, test/run or
        examples/demo.sh without this marker is an error, so the test never
        runs such a command by accident.
  <!-- readme-test: file PATH -->      the block is the whole content of
        PATH (relative to the repository root); it is run as well.

A section added to the README is picked up as it is: its sql and sh blocks
run after the ones above it.  After the last block the test checks what the
README says happens: Getting started's psql walk-through ends with
wf_result('greet-1') = "done", its Python part quotes examples/greet.py,
and the two workers it starts complete greet-2 (local step, activity on
queue mail, timer) within the wait of its wf_result.
"""

import difflib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)

import psycopg  # noqa: E402
from e2e_common import TestFailure, check  # noqa: E402

DB = "readme_test"
BLOCK_TIMEOUT = 60
RUN = {"sql": "sql", "sh": "sh", "bash": "sh", "shell": "sh", "python": "python", "py": "python"}
# commands the test refuses to run unless the block is marked skip
NEEDS_SKIP = re.compile(r"(?<![\w./-])(sudo|apt-get|apt|make|initdb|pg_ctl|pg_ctlcluster|systemctl)(?![\w.-])"
                        r"|\btest/run\b|\bexamples/demo\.sh\b")
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([^\s`]*)[^`]*$")   # also in list items
MARKER = re.compile(r"^\s*<!--\s*readme-test:\s*(.*?)\s*-->\s*$")


class Block:
    def __init__(self, line, lang, text, marker):
        self.line, self.lang, self.text, self.marker = line, lang, text, marker
        self.kind = RUN.get(lang)
        self.output = ""

    def __str__(self):
        return "line %d (```%s)" % (self.line, self.lang)


def parse(path):
    """The README's fenced blocks, in order; raise TestFailure on a malformed marker."""
    lines = open(path).read().split("\n")
    blocks, marker, marker_line, i = [], None, 0, 0
    while i < len(lines):
        m, mk = FENCE.match(lines[i]), MARKER.match(lines[i])
        if mk:
            marker, marker_line = mk.group(1), i + 1
        elif m:
            indent, fence, lang = len(m.group(1)), m.group(2), m.group(3).lower()
            body, j = [], i + 1
            while j < len(lines):
                c = lines[j]
                if c.strip().startswith(fence[0] * len(fence)) and not c.strip().strip(fence[0]):
                    break
                body.append(c[min(indent, len(c) - len(c.lstrip())):])
                j += 1
            blocks.append(Block(i + 1, lang, "\n".join(body) + "\n", marker))
            marker, i = None, j
        elif lines[i].strip() and marker is not None:
            raise TestFailure("line %d: the marker <!-- readme-test: %s --> is not followed by a code block"
                              % (marker_line, marker))
        i += 1
    if marker is not None:
        raise TestFailure("line %d: the marker <!-- readme-test: %s --> is not followed by a code block"
                          % (marker_line, marker))
    return blocks


def block_env(tmp):
    env = dict(os.environ, PGDATABASE=DB, PSQLRC=os.devnull, TMPDIR=tmp,
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    env.pop("PYTHONPATH", None)
    return env


class Runner:
    def __init__(self, tmp):
        self.tmp, self.env, self.groups = tmp, block_env(tmp), []

    def run(self, b, n):
        """Run block b (the n-th); return None or why it failed."""
        if not b.lang:
            return "a code block needs a language: sql or sh (run), conf, text ... (not run)"
        marker = b.marker or ""
        if marker and not re.match(r"(skip\s*\S|file\s+\S+$)", marker):
            return "unknown marker <!-- readme-test: %s -->: use 'skip (reason)' or 'file PATH'" % marker
        if marker.startswith("file"):
            path = marker.split(None, 1)[1]
            try:
                want = open(os.path.join(REPO, path)).read()
            except OSError as e:
                return "the block should be %s, which cannot be read: %s" % (path, e)
            if b.text != want:
                diff = difflib.unified_diff(want.splitlines(), b.text.splitlines(), path, "README", lineterm="")
                return "the block differs from %s: quote the file as it is\n%s" % (path, "\n".join(diff))
        if marker.startswith("skip") or b.kind is None:
            return None
        if b.kind == "sh" and NEEDS_SKIP.search(b.text):
            return ("the block calls %r: mark it <!-- readme-test: skip (reason) --> (the test does not "
                    "install or run servers)" % NEEDS_SKIP.search(b.text).group(0))
        ext = {"sql": "sql", "sh": "sh", "python": "py"}[b.kind]
        src = os.path.join(self.tmp, "block%02d-line%d.%s" % (n, b.line, ext))
        with open(src, "w") as f:
            f.write(b.text)
        cmd = {"sql": ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-f", src],
               "sh": ["bash", "-e", "-o", "pipefail", src],
               "python": [sys.executable, src]}[b.kind]
        out = src + ".out"
        t0 = time.monotonic()
        env = self.env
        if b.kind == "python":
            env = dict(env, PYTHONPATH=os.path.join(REPO, "clients", "python"))
        with open(out, "w") as f:
            p = subprocess.Popen(cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=f,
                                 stderr=subprocess.STDOUT, start_new_session=True)
        self.groups.append(p.pid)
        try:
            rc = p.wait(timeout=BLOCK_TIMEOUT)
        except subprocess.TimeoutExpired:
            rc = None
            self.stop(p.pid, signal.SIGKILL)
            p.wait()
        time.sleep(0.2)   # let processes it stopped write their last lines
        with open(out) as f:
            b.output = f.read()
        print("".join("    | " + line + "\n" for line in b.output.splitlines()), end="")
        print("    (%.1f s)" % (time.monotonic() - t0), flush=True)
        if rc is None:
            return "still running after %d s" % BLOCK_TIMEOUT
        return None if rc == 0 else "exit status %d" % rc

    @staticmethod
    def stop(pgid, sig):
        try:
            os.killpg(pgid, sig)
            return True
        except ProcessLookupError:
            return False

    def stop_all(self):
        """Stop what the blocks left running: SIGTERM, then SIGKILL after 10 s."""
        alive = [g for g in self.groups if self.stop(g, signal.SIGTERM)]
        deadline = time.monotonic() + 10
        while alive and time.monotonic() < deadline:
            time.sleep(0.1)
            alive = [g for g in alive if self.stop(g, 0)]
        for g in alive:
            self.stop(g, signal.SIGKILL)


def check_outcomes(conn, blocks):
    """What the README says its examples do."""
    r = conn.execute("SELECT durable.wf_result('greet-1')").fetchone()[0]
    check(r == "done", "Getting started (psql): wf_result('greet-1') is \"done\" (%r)" % (r,))
    check(any(b.marker == "file examples/greet.py" and b.lang == "python" for b in blocks),
          "Getting started quotes examples/greet.py (<!-- readme-test: file examples/greet.py -->)")
    want = {"greeting": "Hello, Ada!", "receipt": {"sent": True, "to": "ada@example.com"}}
    r = conn.execute("SELECT durable.wf_result('greet-2')").fetchone()[0]
    check(r == want, "Getting started (Python): greet-2's result is %s (%s)" % (want, r))
    shown = [b for b in blocks if b.kind == "sh" and "examples.greet" in b.text]
    check(shown and '"greeting": "Hello, Ada!"' in shown[0].output,
          "the block that runs the Python workers shows greet-2's result within its wf_result wait")
    steps = conn.execute("SELECT seq, kind, name, status, queue FROM durable.journal "
                         " WHERE workflow_id = 'greet-2' ORDER BY seq").fetchall()
    check(steps == [(1, "local", "compose", "completed", None),
                    (2, "activity", "send_email", "completed", "mail"),
                    (3, "sleep", "sleep", "completed", None)],
          "greet-2's journal: compose, send_email on queue mail, the timer (%s)" % (steps,))


def main():
    readme = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "README.md"))
    print("test_readme: %s" % readme, flush=True)
    parent = os.environ.get("DURABLE_TMP")
    tmp = tempfile.mkdtemp(prefix="durable-readme-",
                           dir=parent if parent and os.access(parent, os.W_OK) else None)
    failures = []
    runner = Runner(tmp)
    admin = psycopg.connect("", autocommit=True)
    roles = {r[0] for r in admin.execute("SELECT rolname FROM pg_roles")}
    try:
        admin.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % DB)
        admin.execute("CREATE DATABASE %s" % DB)
        blocks = parse(readme)
        ran = 0
        for n, b in enumerate(blocks, 1):
            what = "skipped: %s" % b.marker[4:].strip() if (b.marker or "").startswith("skip") \
                else ("run" if b.kind else "not run")
            print("%s %s" % (b, what), flush=True)
            why = runner.run(b, n)
            ran += what == "run"
            if why:
                failures.append("%s: %s" % (b, why))
                print("  FAILED: %s" % why, flush=True)
        check(ran > 0, "%d blocks ran" % ran)   # a README the parser misreads fails
        runner.stop_all()
        try:
            with psycopg.connect("", dbname=DB, autocommit=True) as conn:
                check_outcomes(conn, blocks)
        except psycopg.Error as e:
            raise TestFailure("the README's outcomes cannot be read: %s" % str(e).splitlines()[0])
    except TestFailure as e:
        failures.append(str(e))
        print("FAILED: %s" % e, flush=True)
    except Exception as e:
        failures.append("%s: %s" % (type(e).__name__, e))
        print("FAILED with %s: %s" % (type(e).__name__, e), flush=True)
        traceback.print_exc()
    finally:
        runner.stop_all()
        try:
            admin.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % DB)
            for r in admin.execute("SELECT rolname FROM pg_roles").fetchall():
                if r[0] not in roles:
                    admin.execute('DROP ROLE "%s"' % r[0].replace('"', '""'))
        except psycopg.Error as e:
            print("warning: cleanup: %s" % e, flush=True)
        admin.close()
    if failures:
        print("test_readme: %d failure%s:" % (len(failures), "" if len(failures) == 1 else "s"))
        for f in failures:
            print("  " + f)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    print("PASS" if not failures else "FAIL", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
