"""python3 -m durable_worker --dsn DSN --queue QUEUE module [module ...]
python3 -m durable_worker replay --dsn DSN --type TYPE [--status S] [--limit N] module [module ...]

Imports the modules (their @workflow / @activity decorators register the
code) and runs a Worker until SIGTERM or SIGINT.  A lost or refused
connection to the server does not end it: it logs the reason and
reconnects (at once, then backing off from 0.1 s up to 5 s).

replay: replays the stored journals of runs of a workflow type against
the code of the modules, read-only, and prints each run that the code no
longer replays (nondeterminism: it asks for another call than the journal
holds).  Exits 1 if any, so CI can run it before a deploy."""

import argparse
import importlib
import logging
import os
import sys

from . import Worker, WORKFLOWS, replay, _connect


def replay_main(argv):
    p = argparse.ArgumentParser(prog="python3 -m durable_worker replay")
    p.add_argument("--dsn", default=os.environ.get("DURABLE_DSN", ""))
    p.add_argument("--namespace", default=None)
    p.add_argument("--type", required=True, help="workflow type to replay")
    p.add_argument("--status", default=None, help="only runs with this status (e.g. running)")
    p.add_argument("--limit", type=int, default=1000, help="the latest N runs (default 1000)")
    p.add_argument("modules", nargs="+")
    args = p.parse_args(argv)
    sys.path.insert(0, os.getcwd())
    for m in args.modules:
        importlib.import_module(m)
    if args.type not in WORKFLOWS:
        print("no workflow %r in %s" % (args.type, ", ".join(args.modules)), file=sys.stderr)
        return 2
    conn = _connect(args.dsn, args.namespace)
    bad = 0
    results = replay(conn, args.type, status=args.status, limit=args.limit)
    for workflow_id, run_id, problem in results:
        if problem is not None:
            bad += 1
            print("%s (run %s): %s" % (workflow_id, run_id, problem))
    print("replayed %d run(s) of %s: %d nondeterministic" % (len(results), args.type, bad))
    return 1 if bad else 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["replay"]:
        sys.exit(replay_main(argv[1:]))
    p = argparse.ArgumentParser(prog="python3 -m durable_worker", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dsn", default=os.environ.get("DURABLE_DSN", ""),
                   help="libpq connection string (default: PG* environment)")
    p.add_argument("--queue", default="default")
    p.add_argument("--namespace", default=None)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--max-tasks", type=int, default=None)
    p.add_argument("--lease", type=float, default=30, help="lease in seconds")
    p.add_argument("--poll-interval", type=float, default=5)
    p.add_argument("--grace", type=float, default=None,
                   help="on SIGTERM, seconds to let running tasks finish before handing them back (default: the lease)")
    p.add_argument("--name", default=None, help="worker name shown in durable.task_list")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("modules", nargs="+", help="modules that define workflows and activities")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stdout)
    sys.path.insert(0, os.getcwd())
    for m in args.modules:
        importlib.import_module(m)
    w = Worker(args.dsn, queue=args.queue, concurrency=args.concurrency, max_tasks=args.max_tasks,
               lease=args.lease, poll_interval=args.poll_interval, grace=args.grace,
               name=args.name, namespace=args.namespace)
    w.run()
    if w.abandoned:
        # tasks still running past the grace were handed back: do not wait for their threads
        logging.shutdown()
        sys.stdout.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
