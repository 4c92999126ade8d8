/**
 * test/chaos_worker.ts: the worker process of test/e2e/test_chaos_ts.py, a
 * money transfer saga (as examples/typescript/src/saga.ts and the Python
 * examples/saga.py) on tables of its own (ts_chaos_*).
 *
 *   debit     an exactly-once SQL step (ctx.transaction): the debit and the
 *             step's checkpoint commit together
 *   credit    an activity (the "other bank"): at least once, made idempotent
 *             by its own key table; a frozen account fails it for good
 *   refund    the compensation, another exactly-once SQL step
 *   complete  marks the transfer done (exactly once)
 *
 * Every SQL step writes one ts_chaos_audit row in its transaction (no key:
 * a step that ran twice leaves two rows), every execution of credit counts
 * itself in ts_chaos_calls.
 *
 *   node dist/test/chaos_worker.js --setup          create the tables, exit
 *   node dist/test/chaos_worker.js --queue Q [--name N] [--lease 2]
 *        [--concurrency 4] [--poll-interval 1]      run a worker until SIGTERM
 *
 * Connects with the PG* environment (DURABLE_DSN if set); logs from
 * DURABLE_LOG to stderr.
 */
import pg from "pg";
import { ActivityError, NonRetryableError, Worker, defineActivity, defineWorkflow, type Connection } from "../src/index.js";

const connection: Connection = process.env.DURABLE_DSN ?? {};

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS ts_chaos_accounts (
    id      text PRIMARY KEY,
    balance bigint NOT NULL CHECK (balance >= 0),
    frozen  boolean NOT NULL DEFAULT false);
CREATE TABLE IF NOT EXISTS ts_chaos_transfers (
    id      text PRIMARY KEY,
    src     text NOT NULL,
    dst     text NOT NULL,
    amount  bigint NOT NULL,
    status  text NOT NULL);
CREATE TABLE IF NOT EXISTS ts_chaos_credits (
    transfer_id text PRIMARY KEY,
    account     text NOT NULL,
    amount      bigint NOT NULL);
CREATE TABLE IF NOT EXISTS ts_chaos_audit (
    transfer_id text NOT NULL,
    step        text NOT NULL,
    at          timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE TABLE IF NOT EXISTS ts_chaos_calls (
    transfer_id text NOT NULL,
    activity    text NOT NULL,
    n           int NOT NULL,
    PRIMARY KEY (transfer_id, activity));`;

export interface Transfer {
  id: string;
  from: string;
  to: string;
  amount: number;
  /** seconds the credit activity takes */
  delay?: number;
  /** the credit activity's heartbeat timeout */
  heartbeat_timeout?: string;
  /** the credit activity's maximum attempts */
  max_attempts?: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// -- the SQL steps (run inside ctx.transaction: exactly once)

async function debit(c: pg.ClientBase, t: Transfer) {
  const row = await c.query(
    "UPDATE ts_chaos_accounts SET balance = balance - $1 WHERE id = $2 AND balance >= $1 AND NOT frozen RETURNING balance",
    [t.amount, t.from],
  );
  const ok = row.rowCount === 1;
  await c.query("INSERT INTO ts_chaos_transfers VALUES ($1, $2, $3, $4, $5)", [t.id, t.from, t.to, t.amount, ok ? "debited" : "rejected"]);
  await c.query("INSERT INTO ts_chaos_audit (transfer_id, step) VALUES ($1, 'debit')", [t.id]);
  return { ok, balance: ok ? Number(row.rows[0].balance) : null };
}

async function refund(c: pg.ClientBase, t: Transfer) {
  await c.query("UPDATE ts_chaos_accounts SET balance = balance + $1 WHERE id = $2", [t.amount, t.from]);
  await c.query("UPDATE ts_chaos_transfers SET status = 'refunded' WHERE id = $1", [t.id]);
  await c.query("INSERT INTO ts_chaos_audit (transfer_id, step) VALUES ($1, 'refund')", [t.id]);
  return { refunded: t.amount };
}

async function complete(c: pg.ClientBase, t: Transfer) {
  await c.query("UPDATE ts_chaos_transfers SET status = 'completed' WHERE id = $1", [t.id]);
  await c.query("INSERT INTO ts_chaos_audit (transfer_id, step) VALUES ($1, 'complete')", [t.id]);
  return true;
}

/** The other bank: credit the destination.  At least once, idempotent. */
export const credit = defineActivity<Transfer, { credited: number; to: string; firstTime: boolean }>("ts_chaos_credit", async (ctx, t) => {
  await ctx.db.query(
    "INSERT INTO ts_chaos_calls VALUES ($1, 'credit', 1) ON CONFLICT (transfer_id, activity) DO UPDATE SET n = ts_chaos_calls.n + 1",
    [t.id],
  );
  if (t.delay) await sleep(t.delay * 1000);
  const c = await ctx.db.connect();
  try {
    await c.query("BEGIN");
    const frozen = await c.query("SELECT frozen FROM ts_chaos_accounts WHERE id = $1 FOR UPDATE", [t.to]);
    if (frozen.rowCount === 0 || frozen.rows[0].frozen) {
      throw new NonRetryableError(`account ${t.to} does not accept credits`, { type: "AccountFrozen" });
    }
    const fresh = await c.query("INSERT INTO ts_chaos_credits VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", [t.id, t.to, t.amount]);
    if (fresh.rowCount === 1) await c.query("UPDATE ts_chaos_accounts SET balance = balance + $1 WHERE id = $2", [t.amount, t.to]);
    await c.query("COMMIT");
    return { credited: t.amount, to: t.to, firstTime: fresh.rowCount === 1 };
  } catch (e) {
    await c.query("ROLLBACK").catch(() => {});
    throw e;
  } finally {
    c.release();
  }
});

export const transfer = defineWorkflow<Transfer, { transfer: string; status: string; reason?: string }>("ts_chaos_transfer", async (ctx, t) => {
  const debited = await ctx.transaction("debit", (c) => debit(c, t));
  if (!debited.ok) return { transfer: t.id, status: "rejected" };
  try {
    // a worker that dies mid-credit is noticed when its heartbeats stop
    // (the worker heartbeats running activities on its own)
    await ctx.activity(credit, t, {
      startToClose: "30s",
      heartbeat: t.heartbeat_timeout ?? "10s",
      retry: { initialInterval: "200ms", maximumAttempts: t.max_attempts ?? 5, nonRetryableErrorTypes: ["AccountFrozen"] },
    });
  } catch (e) {
    if (!(e instanceof ActivityError)) throw e;
    // compensate: give the money back, exactly once
    await ctx.transaction("refund", (c) => refund(c, t));
    return { transfer: t.id, status: "refunded", reason: e.message };
  }
  await ctx.transaction("complete", (c) => complete(c, t));
  return { transfer: t.id, status: "completed" };
});

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

async function main(args: string[]): Promise<void> {
  if (args.includes("--setup")) {
    const c = new pg.Client(typeof connection === "string" ? { connectionString: connection } : connection);
    await c.connect();
    try {
      await c.query("CREATE EXTENSION IF NOT EXISTS durable");
      await c.query(SCHEMA);
    } finally {
      await c.end();
    }
    return;
  }
  const queue = option(args, "--queue");
  if (queue === undefined) throw new Error("usage: chaos_worker.js --setup | --queue Q [--name N] [--lease S] [--concurrency N] [--poll-interval S]");
  const worker = new Worker({
    connection,
    queue,
    name: option(args, "--name"),
    lease: `${option(args, "--lease") ?? 2}s`,
    concurrency: Number(option(args, "--concurrency") ?? 4),
    pollInterval: `${option(args, "--poll-interval") ?? 1}s`,
    workflows: [transfer],
    activities: [credit],
  });
  console.log(`chaos worker ${worker.name} (pid ${process.pid}) on queue ${queue}`);
  await worker.run();
  console.log(`chaos worker ${worker.name}: stopped (${worker.completed} tasks, ${worker.released} released)`);
}

if (import.meta.url === `file://${process.argv[1]}`) await main(process.argv.slice(2));
