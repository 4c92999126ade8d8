"""examples/saga.py: a money transfer as a saga.

    debit   a local SQL step (ctx.transaction): the debit of the sender and
            the step's checkpoint commit together, so it happens exactly once
    credit  an activity (the "other bank"): at least once, so it is made
            idempotent by its own key table; a frozen account fails it for good
    refund  the compensation, another exactly-once SQL step, when credit failed
    complete  marks the transfer done (exactly once)

Every SQL step also writes one row to saga_audit(transfer_id, step) in its
transaction, and every execution of the credit activity counts itself in
saga_calls, so a test can prove "exactly once" and "at least once".

Run it all in one process (an in-process worker, three transfers):

    /usr/bin/python3 examples/saga.py

or run workers as separate processes and start transfers from psql:

    /usr/bin/python3 examples/saga.py --setup      # tables, accounts alice, bob, carol (frozen)
    PYTHONPATH=clients/python:. /usr/bin/python3 -m durable_worker --queue saga examples.saga
    psql -c "SELECT durable.wf_start('transfer', '{\"id\": \"t1\", \"from\": \"alice\", \"to\": \"bob\", \"amount\": 30}', 't1', 'saga')"
"""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python"))
import durable_worker as dw  # noqa: E402

SCHEMA = """
CREATE TABLE IF NOT EXISTS saga_accounts (
    id      text PRIMARY KEY,
    balance bigint NOT NULL CHECK (balance >= 0),
    frozen  boolean NOT NULL DEFAULT false);
CREATE TABLE IF NOT EXISTS saga_transfers (
    id      text PRIMARY KEY,
    src     text NOT NULL,
    dst     text NOT NULL,
    amount  bigint NOT NULL,
    status  text NOT NULL);
-- the credit activity's idempotency keys: a retried credit adds nothing
CREATE TABLE IF NOT EXISTS saga_credits (
    transfer_id text PRIMARY KEY,
    account     text NOT NULL,
    amount      bigint NOT NULL);
-- one row per SQL step, written in the step's own transaction (no key on
-- purpose: a step that ran twice would show up as two rows)
CREATE TABLE IF NOT EXISTS saga_audit (
    transfer_id text NOT NULL,
    step        text NOT NULL,
    at          timestamptz NOT NULL DEFAULT clock_timestamp());
-- executions of the credit activity (at least once)
CREATE TABLE IF NOT EXISTS saga_calls (
    transfer_id text NOT NULL,
    activity    text NOT NULL,
    n           int NOT NULL,
    PRIMARY KEY (transfer_id, activity));
"""


def setup(conn):
    """Create the extension (if missing) and the example's tables."""
    conn.execute("CREATE EXTENSION IF NOT EXISTS durable")
    conn.execute(SCHEMA)


def open_account(conn, account, balance, frozen=False):
    conn.execute("INSERT INTO saga_accounts VALUES (%s, %s, %s) "
                 "ON CONFLICT (id) DO UPDATE SET balance = excluded.balance, frozen = excluded.frozen",
                 (account, balance, frozen))


class AccountFrozen(Exception):
    """The destination does not take money: retrying will not help."""


class BankUnavailable(Exception):
    """A transient failure: retried by the activity's retry policy."""


# -- the SQL steps (run inside ctx.transaction: exactly once)

def _debit(conn, t):
    row = conn.execute("UPDATE saga_accounts SET balance = balance - %s "
                       " WHERE id = %s AND balance >= %s AND NOT frozen RETURNING balance",
                       (t["amount"], t["from"], t["amount"])).fetchone()
    status = "debited" if row else "rejected"
    conn.execute("INSERT INTO saga_transfers VALUES (%s, %s, %s, %s, %s)",
                 (t["id"], t["from"], t["to"], t["amount"], status))
    conn.execute("INSERT INTO saga_audit (transfer_id, step) VALUES (%s, 'debit')", (t["id"],))
    return {"ok": row is not None, "balance": row[0] if row else None}


def _refund(conn, t):
    conn.execute("UPDATE saga_accounts SET balance = balance + %s WHERE id = %s",
                 (t["amount"], t["from"]))
    conn.execute("UPDATE saga_transfers SET status = 'refunded' WHERE id = %s", (t["id"],))
    conn.execute("INSERT INTO saga_audit (transfer_id, step) VALUES (%s, 'refund')", (t["id"],))
    return {"refunded": t["amount"]}


def _complete(conn, t):
    conn.execute("UPDATE saga_transfers SET status = 'completed' WHERE id = %s", (t["id"],))
    conn.execute("INSERT INTO saga_audit (transfer_id, step) VALUES (%s, 'complete')", (t["id"],))
    return True


@dw.activity()
def credit(ctx, t):
    """The other bank: credit the destination.  At least once, idempotent."""
    conn = ctx.conn
    conn.execute("INSERT INTO saga_calls VALUES (%s, 'credit', 1) "
                 "ON CONFLICT (transfer_id, activity) DO UPDATE SET n = saga_calls.n + 1",
                 (t["id"],))
    if t.get("delay"):
        time.sleep(t["delay"])
    if t.get("flaky") and ctx.attempt < 2:
        raise BankUnavailable("the bank did not answer (attempt %d)" % ctx.attempt)
    with conn.transaction():
        frozen = conn.execute("SELECT frozen FROM saga_accounts WHERE id = %s FOR UPDATE",
                              (t["to"],)).fetchone()
        if frozen is None or frozen[0]:
            raise AccountFrozen("account %s does not accept credits" % t["to"])
        new = conn.execute("INSERT INTO saga_credits VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                           (t["id"], t["to"], t["amount"])).rowcount
        if new:
            conn.execute("UPDATE saga_accounts SET balance = balance + %s WHERE id = %s",
                         (t["amount"], t["to"]))
    return {"credited": t["amount"], "to": t["to"], "first_time": bool(new)}


@dw.workflow()
def transfer(ctx, t):
    debit = ctx.transaction("debit", lambda conn: _debit(conn, t))
    if not debit["ok"]:
        return {"transfer": t["id"], "status": "rejected"}
    try:
        # a worker that dies mid-credit is noticed when its heartbeats stop
        # (the SDK heartbeats running activities on its own)
        receipt = ctx.activity(
            "credit", t, queue=t.get("activity_queue"),
            start_to_close="30s", heartbeat=t.get("heartbeat_timeout", "10s"),
            retry={"initial_interval": "200ms", "maximum_attempts": t.get("max_attempts", 5),
                   "non_retryable_error_types": ["AccountFrozen"]})
    except dw.ActivityError as e:
        # compensate: give the money back, exactly once
        ctx.transaction("refund", lambda conn: _refund(conn, t))
        return {"transfer": t["id"], "status": "refunded", "reason": str(e)}
    ctx.transaction("complete", lambda conn: _complete(conn, t))
    return {"transfer": t["id"], "status": "completed", "receipt": receipt}


def main():
    import threading
    queue = "saga"
    client = dw.Client("")
    setup(client.conn)
    if sys.argv[1:] == ["--setup"]:
        # for running workers as processes: tables plus three demo accounts
        open_account(client.conn, "alice", 100)
        open_account(client.conn, "bob", 0)
        open_account(client.conn, "carol", 0, frozen=True)
        print("created the saga tables and accounts alice (100), bob (0), carol (frozen)")
        return 0
    tag = "%d-%d" % (os.getpid(), int(time.time()))
    alice, bob, carol = ("%s-%s" % (n, tag) for n in ("alice", "bob", "carol"))
    open_account(client.conn, alice, 100)
    open_account(client.conn, bob, 0)
    open_account(client.conn, carol, 0, frozen=True)

    worker = dw.Worker("", queue=queue, concurrency=4, lease=10, poll_interval=1)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()

    transfers = [
        {"id": "ok-" + tag, "from": alice, "to": bob, "amount": 30, "flaky": True},
        {"id": "frozen-" + tag, "from": alice, "to": carol, "amount": 20},
        {"id": "broke-" + tag, "from": alice, "to": bob, "amount": 500},
    ]
    for t in transfers:
        client.start("transfer", t, workflow_id="transfer-" + t["id"], queue=queue)
        print("started transfer %s: %s -> %s, %d" % (t["id"], t["from"], t["to"], t["amount"]))
    results = {}
    for t in transfers:
        results[t["id"]] = r = client.result("transfer-" + t["id"], wait=30)
        print("  %s: %s" % (t["id"], r and r["status"]))
    worker.stop()
    thread.join(10)

    balances = dict(client.conn.execute(
        "SELECT id, balance FROM saga_accounts WHERE id IN (%s, %s, %s)",
        (alice, bob, carol)).fetchall())
    print("balances: alice %d, bob %d, carol %d" % (balances[alice], balances[bob], balances[carol]))
    expected = {"ok": "completed", "frozen": "refunded", "broke": "rejected"}
    ok = all((results[t["id"]] or {}).get("status") == expected[t["id"].split("-")[0]]
             for t in transfers)
    ok = ok and balances == {alice: 70, bob: 30, carol: 0}
    print("saga example: %s" % ("OK" if ok else "UNEXPECTED RESULT"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
