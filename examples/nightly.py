"""examples/nightly.py: a nightly report started by a schedule.

durable.schedule_create('<name>', '0 3 * * *', 'nightly_report', ...) starts
the workflow every day at 03:00 UTC, with the workflow id
'<name>-YYYYMMDDT030000Z' (the fire time), so a fire never starts twice.
The workflow reads its day from that id, counts the workflow runs that
closed in the 24 hours before it (an activity), and stores the report
exactly once (ctx.transaction).

Run it in one process: it creates a schedule, fires it now with
durable.schedule_trigger, backfills the last three nights with
durable.schedule_backfill, waits for the four reports and deletes the
schedule again (--keep leaves it):

    /usr/bin/python3 examples/nightly.py [--name NAME] [--keep]

or from psql, with a worker process running:

    PYTHONPATH=clients/python:. /usr/bin/python3 -m durable_worker --queue nightly examples.nightly
    psql -c "SELECT durable.schedule_create('nightly', '0 3 * * *', 'nightly_report', NULL, '{\"queue\": \"nightly\"}')"
    psql -c "SELECT durable.schedule_trigger('nightly')"
    psql -c "SELECT durable.schedule_backfill('nightly', now() - interval '3 days', now())"
    psql -c "SELECT * FROM nightly_reports"
"""

import argparse
import datetime
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python"))
import durable_worker as dw  # noqa: E402
from psycopg.types.json import Jsonb  # noqa: E402

SCHEMA = """
CREATE TABLE IF NOT EXISTS nightly_reports (
    workflow_id text PRIMARY KEY,
    day_end     timestamptz NOT NULL,
    closed_runs jsonb NOT NULL,
    written_at  timestamptz NOT NULL DEFAULT clock_timestamp());
"""


def setup(conn):
    conn.execute("CREATE EXTENSION IF NOT EXISTS durable")
    conn.execute(SCHEMA)


def fire_time(workflow_id):
    """The fire time a schedule put in the workflow id: …-YYYYMMDDTHHMMSSZ,
    or …-YYYYMMDDTHHMMSS.ffffffZ for a trigger (the moment it was called)."""
    m = re.search(r"-(\d{8}T\d{6})(\.\d{6})?Z$", workflow_id)
    if not m:
        return None
    return datetime.datetime.strptime(m.group(1) + (m.group(2) or ".000000"),
                                      "%Y%m%dT%H%M%S.%f").replace(
        tzinfo=datetime.timezone.utc).isoformat()


@dw.activity()
def count_closed_runs(ctx, day_end):
    rows = ctx.conn.execute(
        "SELECT status, count(*) FROM durable.workflows "
        " WHERE closed_at >= %s::timestamptz - interval '1 day' AND closed_at < %s::timestamptz "
        " GROUP BY status ORDER BY status", (day_end, day_end)).fetchall()
    return {status: n for status, n in rows}


def _store(conn, workflow_id, day_end, counts):
    conn.execute("INSERT INTO nightly_reports (workflow_id, day_end, closed_runs) VALUES (%s, %s, %s)",
                 (workflow_id, day_end, Jsonb(counts)))
    return True


@dw.workflow()
def nightly_report(ctx, input):
    # started by hand (not by a schedule): report the day up to now
    day_end = fire_time(ctx.workflow_id) or ctx.step(
        "now", lambda: datetime.datetime.now(datetime.timezone.utc).isoformat())
    counts = ctx.activity("count_closed_runs", day_end, start_to_close="1m")
    ctx.transaction("store_report", lambda conn: _store(conn, ctx.workflow_id, day_end, counts))
    return {"day_end": day_end, "closed_runs": counts}


def main(argv=None):
    import threading
    p = argparse.ArgumentParser(description="nightly report schedule example")
    p.add_argument("--name", default="nightly-%d" % os.getpid(), help="schedule name")
    p.add_argument("--queue", default="nightly")
    p.add_argument("--keep", action="store_true", help="keep the schedule afterwards")
    args = p.parse_args(argv)

    client = dw.Client("")
    conn = client.conn
    setup(conn)
    first = conn.execute(
        "SELECT durable.schedule_create(%s, '0 3 * * *', 'nightly_report', NULL, %s)",
        (args.name, Jsonb({"queue": args.queue, "timezone": "UTC",
                              "note": "nightly report example"}))).fetchone()[0]
    print("schedule %s: '0 3 * * *' UTC, first fire %s" % (args.name, first))
    for (t,) in conn.execute("SELECT durable.schedule_next_times('0 3 * * *', 3, 'UTC')"):
        print("  next: %s" % t)

    worker = dw.Worker("", queue=args.queue, concurrency=4, lease=10, poll_interval=1)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()

    started = [conn.execute("SELECT durable.schedule_trigger(%s)", (args.name,)).fetchone()[0]]
    print("triggered now: %s" % started[0])
    n = conn.execute("SELECT durable.schedule_backfill(%s, now() - interval '3 days', now())",
                     (args.name,)).fetchone()[0]
    started += [r[0] for r in conn.execute(
        "SELECT workflow_id FROM durable.workflows WHERE workflow_id LIKE %s AND workflow_id <> %s "
        " ORDER BY workflow_id", (args.name + "-%", started[0]))]
    print("backfilled %d night(s): %s" % (n, ", ".join(started[1:])))

    results = {}
    for wid in started:
        results[wid] = client.result(wid, wait=30)
        print("  %s: %s" % (wid, results[wid]))
    worker.stop()
    thread.join(10)
    fires = conn.execute("SELECT fires FROM durable.schedule_list WHERE name = %s",
                         (args.name,)).fetchone()[0]
    print("schedule_list: %d fire(s) recorded" % fires)
    if not args.keep:
        conn.execute("SELECT durable.schedule_delete(%s)", (args.name,))
    ok = n == 3 and len(started) == 4 and \
        all(r is not None and r["day_end"] == fire_time(wid) for wid, r in results.items())
    print("nightly example: %s" % ("OK" if ok else "UNEXPECTED RESULT"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
