#!/usr/bin/env python3
"""test/e2e/test_conformance.py: the SDK conformance suite (test/conformance)
for the Python and the TypeScript SDK.

test/run calls it as the postgres user with PGHOST/PGPORT/PGUSER/PGDATABASE
pointing at a fresh server that preloads durable; it creates the extension
if missing, builds the TypeScript SDK (npm run build, its node_modules being
installed by test/run with npm ci) when clients/typescript/dist is missing
or older than its sources, then runs

    python3 test/conformance/run.py python typescript

which starts each SDK's conformance worker as a real process per scenario,
drives the scenario and compares the histories event by event (see
test/conformance/README.md).  The exit status is run.py's.
"""

import glob
import os
import subprocess
import sys
import time

import psycopg

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
TS_SDK = os.path.join(REPO, "clients", "typescript")


def typescript_sdk_stale():
    dist = os.path.join(TS_SDK, "dist", "src", "index.js")
    if not os.path.exists(dist):
        return True
    sources = glob.glob(os.path.join(TS_SDK, "src", "*.ts")) + [
        os.path.join(TS_SDK, "tsconfig.json"), os.path.join(TS_SDK, "package.json")]
    return os.path.getmtime(dist) < max(os.path.getmtime(p) for p in sources if os.path.exists(p))


def main():
    with psycopg.connect("", autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS durable")
        # the server preloads durable: its launcher starts serving a database
        # whose extension was just created within a few seconds; wait for it
        # so that the background worker, not run.py's durable.tick()
        # fallback, does the periodic work
        deadline = time.monotonic() + 15
        while not conn.execute("SELECT EXISTS (SELECT FROM pg_stat_activity WHERE backend_type ="
                               " 'durable worker' AND datname = current_database())").fetchone()[0]:
            if time.monotonic() > deadline:
                print("no durable background worker after 15 s: run.py will call durable.tick()")
                break
            time.sleep(0.1)
    if not os.path.isdir(os.path.join(TS_SDK, "node_modules")):
        print("FAILED: clients/typescript/node_modules is missing (test/run installs it with npm ci)")
        return 1
    if typescript_sdk_stale():
        print("== building the TypeScript SDK (npm run build)", flush=True)
        p = subprocess.run(["npm", "run", "build", "--silent"], cwd=TS_SDK)
        if p.returncode != 0:
            print("FAILED: npm run build in clients/typescript (exit %d)" % p.returncode)
            return 1
    print("== conformance suite", flush=True)
    p = subprocess.run([sys.executable, os.path.join(REPO, "test", "conformance", "run.py"),
                        "python", "typescript"], cwd=REPO)
    print("PASS" if p.returncode == 0 else "FAIL", flush=True)
    return p.returncode


if __name__ == "__main__":
    sys.exit(main())
