#!/usr/bin/env python3
"""bench/retention.py: do the tables stay flat while the retention purge
runs under sustained load?

Run by bench/retention.sh against a cluster with durable preloaded
(background worker on, default naptime) and a namespace 'bench' whose
retention is short (1 minute).

pgbench (--clients connections, each with SET durable.namespace = 'bench'
through PGOPTIONS and its own queue) pushes one-step workflows through for
--duration seconds.  One pgbench transaction handles --batch workflows in
three commits: wf_start x batch, task_poll claiming them, task_complete of
each (recording one local step, so durable.steps churns too).  Meanwhile,
every --every seconds, this script prints the total sizes of durable.runs,
tasks, steps and events, the number of runs, how many closed runs are
past their retention (overdue: the purge has not reached them yet) and
the age of the oldest closed run.  After the load it keeps sampling for
--drain seconds, while the last runs age out.

Once retention kicks in (closed runs older than the retention leave, a
batch of durable.batch_size per background-worker round) the sizes must
stay flat; if the purge cannot keep up, overdue grows and the summary says
by how much.
"""
import argparse
import os
import re
import subprocess
import sys
import time

import psycopg

TABLES = ("runs", "tasks", "steps", "events")

SCRIPT = """\
-- bench/retention.py: :batch one-step workflows per transaction, each
-- client on its own queue, 3 commits: start, claim, complete (+1 step)
SELECT durable.wf_start('retention', '{"order": 1234, "to": "ada@example.com"}'::jsonb,
                        NULL, 'q' || :client_id)
  FROM generate_series(1, :batch);
SELECT count(*) AS n, coalesce(array_agg(token), '{}') AS toks
  FROM durable.task_poll('q' || :client_id, 'w' || :client_id, :batch) \\gset
\\if :n > 0
SELECT durable.task_complete(t, '{"ok": true}'::jsonb,
                             '[{"seq": 1, "name": "charge", "result": {"charged": 1234}}]'::jsonb)
  FROM unnest(:toks::bigint[]) t;
\\endif
"""

SAMPLE = """
SELECT extract(epoch FROM clock_timestamp())::float8,
       (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM durable.run_id_seq),
       (SELECT count(*) FROM durable.runs),
       (SELECT count(*) FROM durable.runs WHERE status = 'running'),
       (SELECT count(*) FROM durable.runs r JOIN durable.namespaces n USING (namespace)
         WHERE r.closed_at < now() - n.retention),
       (SELECT extract(epoch FROM now() - min(closed_at))::float8 FROM durable.runs
         WHERE closed_at IS NOT NULL),
       pg_total_relation_size('durable.runs'), pg_total_relation_size('durable.tasks'),
       pg_total_relation_size('durable.steps'), pg_total_relation_size('durable.events')
"""


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def out(msg=""):
    print(msg, flush=True)


def mb(b):
    return b / (1024.0 * 1024.0)


def cpu_secs(pid):
    """utime + stime of a process, or None when /proc does not say."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError):
        return float("nan")


class Sampler:
    def __init__(self, conn, t0, bgw_pid):
        self.conn, self.t0, self.bgw_pid = conn, t0, bgw_pid
        self.rows = []  # (t, started, runs, running, overdue, oldest, sizes...)
        self.prev = None

    def header(self):
        out("%6s %9s %6s %8s %7s %7s %6s %8s %8s %8s %9s %7s %5s" % (
            "t(s)", "started", "wf/s", "purged/s", "runs", "overdue", "oldest",
            "runs_MB", "tasks_MB", "steps_MB", "events_MB", "bgw_cpu", "load"))

    def sample(self, phase=""):
        r = self.conn.execute(SAMPLE).fetchone()
        t, started, runs, running, overdue, oldest = r[0] - self.t0, r[1], r[2], r[3], r[4], r[5]
        sizes = r[6:10]
        purged = started - runs
        cpu = cpu_secs(self.bgw_pid)
        rate = prate = cpu_pct = "-"
        # rates over at least 5 s (the sequence runs ahead of commits)
        if self.prev and t - self.prev[0] >= 5:
            dt = t - self.prev[0]
            rate = "%.0f" % ((started - self.prev[1]) / dt)
            prate = "%.0f" % ((purged - self.prev[2]) / dt)
            if cpu is not None and self.prev[3] is not None:
                cpu_pct = "%.0f%%" % (100.0 * (cpu - self.prev[3]) / dt)
        if not self.prev or t - self.prev[0] >= 5:
            self.prev = (t, started, purged, cpu)
        self.rows.append((t, started, runs, running, overdue, oldest) + tuple(sizes))
        out("%6.0f %9d %6s %8s %7d %7d %5.0fs %8.1f %8.1f %8.1f %9.1f %7s %5.1f%s" % (
            t, started, rate, prate, runs, overdue, oldest or 0.0,
            mb(sizes[0]), mb(sizes[1]), mb(sizes[2]), mb(sizes[3]), cpu_pct, loadavg(), phase))
        return self.rows[-1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--pgbench", default="pgbench")
    ap.add_argument("--pghost", required=True)
    ap.add_argument("--pgport", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--duration", type=int, default=540)
    ap.add_argument("--drain", type=int, default=90)
    ap.add_argument("--clients", type=int, default=6)
    ap.add_argument("--batch", type=int, default=25)
    ap.add_argument("--every", type=int, default=30)
    args = ap.parse_args()

    conn = psycopg.connect(args.dsn, autocommit=True)
    retention = conn.execute(
        "SELECT extract(epoch FROM retention)::float8 FROM durable.namespaces"
        " WHERE namespace = 'bench'").fetchone()[0]
    naptime = conn.execute("SHOW durable.naptime").fetchone()[0]
    batch_size = conn.execute("SHOW durable.batch_size").fetchone()[0]
    t_end = time.time() + 60
    while time.time() < t_end:  # the launcher starts the worker within 10 s
        bgw_pid = conn.execute("SELECT min(pid) FROM pg_stat_activity WHERE backend_type = 'durable worker'"
                               "   AND datname = current_database()").fetchone()[0]
        if bgw_pid:
            break
        time.sleep(0.2)
    else:
        log("the durable background worker did not start for this database")
        sys.exit(1)

    script = os.path.join(args.workdir, "retention.sql")
    with open(script, "w") as f:
        f.write(SCRIPT)
    pglog = os.path.join(args.workdir, "pgbench.log")
    env = dict(os.environ, PGOPTIONS="-c durable.namespace=bench")
    cmd = [args.pgbench, "-h", args.pghost, "-p", str(args.pgport), "-U", "postgres", "-n",
           "-M", "prepared", "-c", str(args.clients), "-j", str(min(args.clients, 2)),
           "-T", str(args.duration), "-D", "batch=%d" % args.batch, "-f", script, "bench"]

    out()
    out("durable retention bench: namespace 'bench', retention %gs, %d pgbench clients x %d workflows"
        " per transaction, %d s of load + %d s drain, naptime %s, batch_size %s"
        % (retention, args.clients, args.batch, args.duration, args.drain, naptime, batch_size))
    out("(started: workflows started so far; purged/s: runs removed by retention per second;"
        " overdue: closed runs past retention not yet purged;")
    out(" oldest: age of the oldest closed run; bgw_cpu: CPU of durable's background worker"
        " (purge + timers); load: 1-min load average of the machine)")
    t0 = time.time()
    sampler = Sampler(conn, t0, bgw_pid)
    sampler.header()
    sampler.sample()
    with open(pglog, "w") as lf:
        proc = subprocess.Popen(cmd, stdout=lf, stderr=subprocess.STDOUT, env=env)
        nxt = t0 + args.every
        while proc.poll() is None:
            time.sleep(max(0.0, min(1.0, nxt - time.time())))
            if time.time() >= nxt and proc.poll() is None:
                sampler.sample()
                nxt += args.every
    t_load = time.time() - t0
    last_load = sampler.sample("  <- load ends")
    load_rows = list(sampler.rows)
    t_drain_end = time.time() + args.drain
    nxt = time.time() + args.every
    while time.time() < t_drain_end:
        time.sleep(max(0.0, min(nxt, t_drain_end) - time.time()))
        sampler.sample("  (drain)")
        nxt += args.every

    with open(pglog) as f:
        log_text = f.read()
    m = re.search(r"number of transactions actually processed: (\d+)", log_text)
    xacts = int(m.group(1)) if m else 0
    failed = re.search(r"number of failed transactions: (\d+)", log_text)
    errors = [l for l in log_text.splitlines() if "ERROR" in l or "error" in l.lower()][:5]

    started = last_load[1]
    out()
    out("load: %d workflows started in %.0f s = %.0f workflows/s (%d pgbench transactions, %d clients)"
        % (started, t_load, started / t_load, xacts, args.clients))
    still_open = last_load[3]
    if still_open:
        out("      %d runs still open when the load stopped" % still_open)
    if (failed and int(failed.group(1))) or errors or (m is None):
        out("  !! pgbench reported problems (%s):" % pglog)
        for l in errors:
            out("     " + l)

    # once retention kicks in: samples taken after two retention periods
    settled = [r for r in load_rows if r[0] >= 2 * retention]
    if len(settled) >= 2:
        first, last = settled[0], settled[-1]
        out("sizes from t=%.0fs to t=%.0fs (after retention kicked in, until the load ended):"
            % (first[0], last[0]))
        grew = False
        for i, name in enumerate(TABLES):
            a, b = first[6 + i], last[6 + i]
            pct = 100.0 * (b - a) / a if a else 0.0
            if b - a > 0.10 * a + 1024 * 1024:
                grew = True
            out("    durable.%-7s %8.1f MB -> %8.1f MB  (%+.1f MB, %+.0f%%)"
                % (name, mb(a), mb(b), mb(b - a), pct))
        peak = max(r[6] + r[7] + r[8] + r[9] for r in settled)
        out("    total peak %.1f MB; verdict: %s" % (
            mb(peak), "GROWING (more than 10% + 1 MB on some table)" if grew else "flat (within 10% + 1 MB)"))
        over = [r[4] for r in settled]
        oldest = [r[5] or 0.0 for r in settled]
        rate = started / t_load
        worst = max(over)
        if worst > max(rate * 5, args.batch * args.clients * 10) or max(oldest) > retention + 10:
            out("purge: CANNOT KEEP UP: up to %d closed runs past retention (%.0f s of load),"
                " oldest closed run %.0f s old (retention %g s)"
                % (worst, worst / rate if rate else 0.0, max(oldest), retention))
        else:
            out("purge: keeps up: at most %d closed runs past retention at a sample (%.1f s of load),"
                " oldest closed run at most %.0f s old (retention %g s)"
                % (worst, worst / rate if rate else 0.0, max(oldest), retention))
    else:
        out("(load too short to judge flatness: need samples after t = %.0f s)" % (2 * retention))
    vac = conn.execute(
        "SELECT string_agg(format('%s %s (%s dead now)', relname, autovacuum_count, n_dead_tup),"
        "                  ', ' ORDER BY relname)"
        "  FROM pg_stat_user_tables WHERE schemaname = 'durable'"
        "   AND relname IN ('runs', 'tasks', 'steps', 'events')").fetchone()[0]
    conn.close()
    out("autovacuum runs over the whole bench: %s" % vac)
    final = sampler.rows[-1]
    out("after %.0f s of drain: %d runs left, %d overdue" % (args.drain, final[2], final[4]))


if __name__ == "__main__":
    main()
