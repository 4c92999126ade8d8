/**
 * approval: an order waits for a human's approval (the Python approval.py).
 * Approved in time, it ships (an activity); otherwise the wait times out
 * (DurableTimeout) and the order is cancelled.  The wait is a durable timer
 * in the database: no worker holds anything while the order waits.
 *
 *   node dist/approval.js      (with `node dist/worker.js` running)
 */
import { Client, DurableTimeout, defineActivity, defineSignal, defineWorkflow, type Duration } from "durable-worker";
import { QUEUE, connection, report, tag } from "./common.js";

export const approve = defineSignal<{ by: string }>("approve");

export const shipOrder = defineActivity<{ order: string }, { tracking: string }>("ts_ship_order", async (_ctx, o) => ({ tracking: `trk-${o.order}` }));

export interface ApprovalResult {
  order: string;
  status: "approved" | "timed_out";
  approvedBy?: string;
  tracking?: string;
}

export const orderApproval = defineWorkflow<{ order: string; timeout?: Duration }, ApprovalResult>("ts_order_approval", async (ctx, o) => {
  await ctx.step("record_order", () => ({ order: o.order, state: "awaiting approval" }));
  let decision;
  try {
    decision = await ctx.waitSignal(approve, { timeout: o.timeout ?? "1d" });
  } catch (e) {
    if (!(e instanceof DurableTimeout)) throw e;
    await ctx.step("cancel_order", () => ({ order: o.order, state: "cancelled" }));
    return { order: o.order, status: "timed_out" };
  }
  const shipment = await ctx.activity(shipOrder, o, { startToClose: "30s" });
  return { order: o.order, status: "approved", approvedBy: decision.by, tracking: shipment.tracking };
});

async function main() {
  const client = new Client(connection);
  let ok = false;
  try {
    const fast = await client.start(orderApproval, { order: `a-${tag}`, timeout: "1h" }, { queue: QUEUE, workflowId: `order-approved-${tag}` });
    const slow = await client.start(orderApproval, { order: `b-${tag}`, timeout: "2s" }, { queue: QUEUE, workflowId: `order-timeout-${tag}` });
    console.log(`started ${fast.workflowId} (timeout 1h) and ${slow.workflowId} (timeout 2s)`);
    // wait until the first order waits for its signal, then approve it
    const deadline = Date.now() + 30_000;
    while (!(await fast.describe()).pending_steps.some((s: { kind: string }) => s.kind === "signal")) {
      if (Date.now() > deadline) throw new Error("the order never started waiting");
      await new Promise((r) => setTimeout(r, 100));
    }
    await fast.signal(approve, { by: "ada" });
    console.log(`signalled approve to ${fast.workflowId}`);
    const [r1, r2] = await Promise.all([fast.result({ timeout: "30s" }), slow.result({ timeout: "30s" })]);
    console.log(`  ${fast.workflowId}: ${JSON.stringify(r1)}`);
    console.log(`  ${slow.workflowId}: ${JSON.stringify(r2)}`);
    ok = r1.status === "approved" && r1.approvedBy === "ada" && r1.tracking === `trk-a-${tag}` && r2.status === "timed_out";
  } finally {
    await client.close();
  }
  report("approval", ok);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
