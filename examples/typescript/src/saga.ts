/**
 * saga: a money transfer with compensation (the Python saga.py).
 *
 *   debit     an exactly-once SQL step (ctx.transaction): the debit and the
 *             step's checkpoint commit together
 *   credit    an activity (the "other bank"): at least once, made idempotent
 *             by its own key table; a frozen account fails it for good
 *   refund    the compensation, another exactly-once SQL step, when credit failed
 *   complete  marks the transfer done (exactly once)
 *
 * Every SQL step writes one saga_audit row in its transaction, and every
 * execution of credit counts itself in saga_calls, so the client can check
 * "exactly once" and "at least once".
 *
 *   node dist/saga.js      (with `node dist/worker.js` running)
 */
import type pg from "pg";
import { ActivityError, Client, NonRetryableError, defineActivity, defineWorkflow } from "durable-worker";
import { QUEUE, connection, report, tag } from "./common.js";

const SCHEMA = `
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
CREATE TABLE IF NOT EXISTS saga_credits (
    transfer_id text PRIMARY KEY,
    account     text NOT NULL,
    amount      bigint NOT NULL);
CREATE TABLE IF NOT EXISTS saga_audit (
    transfer_id text NOT NULL,
    step        text NOT NULL,
    at          timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE TABLE IF NOT EXISTS saga_calls (
    transfer_id text NOT NULL,
    activity    text NOT NULL,
    n           int NOT NULL,
    PRIMARY KEY (transfer_id, activity));`;

export interface Transfer {
  id: string;
  from: string;
  to: string;
  amount: number;
  /** the first attempt of credit fails (a transient error, retried) */
  flaky?: boolean;
}

export interface TransferResult {
  transfer: string;
  status: "completed" | "refunded" | "rejected";
  reason?: string;
}

// -- the SQL steps (run inside ctx.transaction: exactly once)

async function debit(c: pg.ClientBase, t: Transfer) {
  const row = await c.query(
    "UPDATE saga_accounts SET balance = balance - $1 WHERE id = $2 AND balance >= $1 AND NOT frozen RETURNING balance",
    [t.amount, t.from],
  );
  const ok = row.rowCount === 1;
  await c.query("INSERT INTO saga_transfers VALUES ($1, $2, $3, $4, $5)", [t.id, t.from, t.to, t.amount, ok ? "debited" : "rejected"]);
  await c.query("INSERT INTO saga_audit (transfer_id, step) VALUES ($1, 'debit')", [t.id]);
  return { ok, balance: ok ? Number(row.rows[0].balance) : null };
}

async function refund(c: pg.ClientBase, t: Transfer) {
  await c.query("UPDATE saga_accounts SET balance = balance + $1 WHERE id = $2", [t.amount, t.from]);
  await c.query("UPDATE saga_transfers SET status = 'refunded' WHERE id = $1", [t.id]);
  await c.query("INSERT INTO saga_audit (transfer_id, step) VALUES ($1, 'refund')", [t.id]);
  return { refunded: t.amount };
}

async function complete(c: pg.ClientBase, t: Transfer) {
  await c.query("UPDATE saga_transfers SET status = 'completed' WHERE id = $1", [t.id]);
  await c.query("INSERT INTO saga_audit (transfer_id, step) VALUES ($1, 'complete')", [t.id]);
  return true;
}

/** The other bank: credit the destination.  At least once, idempotent. */
export const credit = defineActivity<Transfer, { credited: number; to: string; firstTime: boolean }>("ts_credit", async (ctx, t) => {
  await ctx.db.query(
    "INSERT INTO saga_calls VALUES ($1, 'credit', 1) ON CONFLICT (transfer_id, activity) DO UPDATE SET n = saga_calls.n + 1",
    [t.id],
  );
  if (t.flaky && ctx.attempt < 2) throw new Error(`the bank did not answer (attempt ${ctx.attempt})`);
  const c = await ctx.db.connect();
  try {
    await c.query("BEGIN");
    const frozen = await c.query("SELECT frozen FROM saga_accounts WHERE id = $1 FOR UPDATE", [t.to]);
    if (frozen.rowCount === 0 || frozen.rows[0].frozen) {
      throw new NonRetryableError(`account ${t.to} does not accept credits`, { type: "AccountFrozen" });
    }
    const fresh = await c.query("INSERT INTO saga_credits VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", [t.id, t.to, t.amount]);
    if (fresh.rowCount === 1) await c.query("UPDATE saga_accounts SET balance = balance + $1 WHERE id = $2", [t.amount, t.to]);
    await c.query("COMMIT");
    return { credited: t.amount, to: t.to, firstTime: fresh.rowCount === 1 };
  } catch (e) {
    await c.query("ROLLBACK");
    throw e;
  } finally {
    c.release();
  }
});

export const transfer = defineWorkflow<Transfer, TransferResult>("ts_transfer", async (ctx, t) => {
  const debited = await ctx.transaction("debit", (c) => debit(c, t));
  if (!debited.ok) return { transfer: t.id, status: "rejected" };
  try {
    await ctx.activity(credit, t, {
      startToClose: "30s",
      heartbeat: "10s",
      retry: { initialInterval: "200ms", maximumAttempts: 5, nonRetryableErrorTypes: ["AccountFrozen"] },
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

async function main() {
  const client = new Client(connection);
  let ok = false;
  try {
    await client.pool.query(SCHEMA);
    const [alice, bob, carol] = ["alice", "bob", "carol"].map((n) => `${n}-${tag}`);
    for (const [id, balance, frozen] of [[alice, 100, false], [bob, 0, false], [carol, 0, true]] as const) {
      await client.pool.query("INSERT INTO saga_accounts VALUES ($1, $2, $3)", [id, balance, frozen]);
    }
    const transfers: Transfer[] = [
      { id: `ok-${tag}`, from: alice, to: bob, amount: 30, flaky: true },
      { id: `frozen-${tag}`, from: alice, to: carol, amount: 20 },
      { id: `broke-${tag}`, from: alice, to: bob, amount: 500 },
    ];
    const handles = await Promise.all(transfers.map((t) => client.start(transfer, t, { queue: QUEUE, workflowId: `transfer-${t.id}` })));
    const results = await Promise.all(handles.map((h) => h.result({ timeout: "60s" })));
    for (const r of results) console.log(`  ${r.transfer}: ${r.status}${r.reason ? ` (${r.reason})` : ""}`);
    const balances = Object.fromEntries(
      (await client.pool.query("SELECT id, balance::int AS b FROM saga_accounts WHERE id = ANY($1)", [[alice, bob, carol]])).rows.map((r) => [r.id, r.b]),
    );
    console.log(`balances: alice ${balances[alice]}, bob ${balances[bob]}, carol ${balances[carol]}`);
    const audit = (await client.pool.query("SELECT count(*)::int AS n FROM saga_audit WHERE transfer_id = ANY($1)", [transfers.map((t) => t.id)])).rows[0].n;
    ok =
      results.map((r) => r.status).join(",") === "completed,refunded,rejected" &&
      balances[alice] === 70 && balances[bob] === 30 && balances[carol] === 0 &&
      audit === 5; // debit+complete, debit+refund, debit: each SQL step once
  } finally {
    await client.close();
  }
  report("saga", ok);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
