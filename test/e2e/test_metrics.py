#!/usr/bin/env python3
"""test/e2e/test_metrics.py: durable.metrics() after known work, and the
same numbers scraped through Debian's prometheus-postgres-exporter with
docs/postgres_exporter.yaml.

Real worker processes (test/e2e/worker.py) run 6 'order' workflows (three
local steps and two activities each); one workflow worker is kill -9'd
while it holds a workflow task, so its lease expires.  Then the counters
must say: 6 started and 6 completed, as many claims as schedule-to-start
observations, one workflow lease expiry at least, wake-ups sent, no task
left.  The exporter runs as a monitoring role (a member of pg_monitor, no
durable right) and must expose the same values under the same names.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_common import check, main, wait_for  # noqa: E402

from psycopg.types.json import Jsonb  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QUERIES = os.path.join(ROOT, "docs", "postgres_exporter.yaml")
EXPORTER = "/usr/bin/prometheus-postgres-exporter"


def metric(conn, sample, **labels):
    row = conn.execute("SELECT coalesce(sum(value), 0) AS v FROM durable.metrics() "
                       "WHERE sample = %s AND labels @> %s",
                       (sample, Jsonb(labels))).fetchone()
    return row["v"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_exposition(text):
    """{(name, frozenset(labels)): value} of a Prometheus text exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$', line)
        if not m:
            continue
        labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        labels.pop("server", None)
        out[(m.group(1), frozenset(labels.items()))] = float(m.group(3))
    return out


def test(conn, workers):
    conn.execute("SELECT durable.metrics_reset()")
    conn.execute("SET durable.metrics_gauge_interval = 0")
    workers.start("act", "--mode", "activity", "--activity-queue", "mq_act", "--lease", "5 s")
    a = workers.start("wf-A", "--mode", "workflow", "--queue", "mq", "--activity-queue", "mq_act",
                      "--lease", "2 s", env={"E2E_PAUSE_AFTER": "step2", "E2E_PAUSE_SECONDS": "60"})
    conn.execute("SELECT durable.wf_start('order', %s, workflow_id => 'm-0', queue => 'mq')",
                 (Jsonb({"order_id": "o-0", "qty": 1, "price": 2}),))
    wait_for("worker A to pause after step2", lambda: "pausing" in workers.log("wf-A"))
    os.kill(a.pid, signal.SIGKILL)
    a.wait()
    workers.start("wf-B", "--mode", "workflow", "--queue", "mq", "--activity-queue", "mq_act",
                  "--lease", "2 s")
    for i in range(1, 6):
        conn.execute("SELECT durable.wf_start('order', %s, workflow_id => %s, queue => 'mq')",
                     (Jsonb({"order_id": f"o-{i}", "qty": i, "price": 3}), f"m-{i}"))
    for i in range(6):
        conn.execute("SELECT durable.wf_result(%s, '60 s')", (f"m-{i}",))
        st = conn.execute("SELECT durable.wf_status(%s) AS s", (f"m-{i}",)).fetchone()["s"]
        check(st == "completed", f"m-{i} completed ({st})")

    started = metric(conn, "durable_workflows_started_total", type="order")
    completed = metric(conn, "durable_workflows_closed_total", type="order", status="completed")
    wf_claims = metric(conn, "durable_tasks_claimed_total", queue="mq", kind="workflow")
    act_claims = metric(conn, "durable_tasks_claimed_total", queue="mq_act", kind="activity")
    s2s = (metric(conn, "durable_schedule_to_start_seconds_count", queue="mq")
           + metric(conn, "durable_schedule_to_start_seconds_count", queue="mq_act"))
    s2s_inf = (metric(conn, "durable_schedule_to_start_seconds_bucket", queue="mq", le="+Inf")
               + metric(conn, "durable_schedule_to_start_seconds_bucket", queue="mq_act", le="+Inf"))
    expiries = metric(conn, "durable_lease_expiries_total", queue="mq", kind="workflow")
    wakeups = metric(conn, "durable_wakeups_sent_total")
    print(f"started {started}, completed {completed}, workflow claims {wf_claims}, "
          f"activity claims {act_claims}, schedule-to-start {s2s}, expiries {expiries}, "
          f"wake-ups {wakeups}")
    check(started == 6, "6 runs of type order counted as started")
    check(completed == 6, "6 runs of type order counted as completed")
    # each run: 3 workflow tasks at least (start, after each activity), 2 activities
    check(wf_claims >= 18, f"at least 3 workflow tasks claimed per run ({wf_claims})")
    check(act_claims == 12, f"2 activities claimed per run ({act_claims})")
    check(s2s == wf_claims + act_claims and s2s_inf == s2s,
          "one schedule-to-start observation per claim, all in the +Inf bucket")
    check(expiries >= 1, "the killed worker's lease expiry is counted")
    check(metric(conn, "durable_task_failures_total", queue="mq", kind="workflow") >= expiries,
          "an expired lease counts as a failed attempt")
    check(wakeups >= 1, "NOTIFY wake-ups are counted")
    check(metric(conn, "durable_tasks", queue="mq") + metric(conn, "durable_tasks", queue="mq_act") == 0,
          "no task of the queues is left")

    # the exporter, as a monitoring role with no durable right
    conn.execute("DROP ROLE IF EXISTS durable_e2e_monitor")
    conn.execute("CREATE ROLE durable_e2e_monitor LOGIN IN ROLE pg_monitor")
    port = free_port()
    host, pgport, db = os.environ["PGHOST"], os.environ["PGPORT"], os.environ["PGDATABASE"]
    env = dict(os.environ,
               DATA_SOURCE_NAME=f"host={host} port={pgport} dbname={db} "
                                "user=durable_e2e_monitor sslmode=disable")
    log = open(os.path.join(workers.dir, "exporter.log"), "w")
    exp = subprocess.Popen([EXPORTER, f"--extend.query-path={QUERIES}",
                            f"--web.listen-address=127.0.0.1:{port}",
                            "--disable-default-metrics", "--disable-settings-metrics"],
                           env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        def scrape():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    body = r.read().decode()
                return body if "durable_workflows_started_total" in body else None
            except OSError:
                return None
        body = wait_for("the exporter to serve durable's metrics", scrape, timeout=30, interval=0.5)
    finally:
        exp.terminate()
        exp.wait()
        log.close()
    got = parse_exposition(body)

    def scraped(name, **labels):
        return got.get((name, frozenset(labels.items())))

    check(scraped("durable_workflows_started_total", namespace="default", type="order") == 6,
          "exporter: durable_workflows_started_total{type=order} 6")
    check(scraped("durable_workflows_closed_total", namespace="default", type="order",
                  status="completed") == 6,
          "exporter: durable_workflows_closed_total{status=completed} 6")
    check(scraped("durable_tasks_claimed_total", namespace="default", queue="mq_act",
                  kind="activity") == act_claims,
          "exporter: activity claims as durable.metrics() counts them")
    check(scraped("durable_schedule_to_start_seconds_count", namespace="default", queue="mq_act",
                  kind="activity") == act_claims,
          "exporter: the schedule-to-start histogram's count")
    check(scraped("durable_schedule_to_start_seconds_bucket", namespace="default", queue="mq_act",
                  kind="activity", le="+Inf") == act_claims,
          "exporter: the histogram's +Inf bucket")
    check("# TYPE durable_schedule_to_start_seconds histogram" in body,
          "exporter: schedule-to-start is typed as a histogram")
    check(scraped("durable_lease_expiries_total", namespace="default", queue="mq",
                  kind="workflow") == expiries,
          "exporter: the lease expiry")
    check(scraped("durable_wakeups_sent_total") is not None, "exporter: wake-ups")
    check(scraped("durable_runs_open", namespace="default") is None or
          scraped("durable_runs_open", namespace="default") == 0,
          "exporter: no open run left")
    conn.execute("DROP ROLE durable_e2e_monitor")


if __name__ == "__main__":
    main(test)
