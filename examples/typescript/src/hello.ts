/**
 * hello: a local step, an activity, a durable timer (the Python greet.py).
 *
 *   node dist/hello.js      (with `node dist/worker.js` running)
 */
import { Client, defineActivity, defineWorkflow } from "durable-worker";
import { QUEUE, connection, report, tag } from "./common.js";

export interface Message {
  to: string;
  text: string;
}

export const sendEmail = defineActivity<Message, { sent: boolean; to: string }>("ts_send_email", async (_ctx, msg) => {
  console.log(`sending ${JSON.stringify(msg.text)} to ${msg.to}`);
  return { sent: true, to: msg.to };
});

export const greet = defineWorkflow<{ name: string }, { greeting: string; receipt: { sent: boolean; to: string } }>(
  "ts_greet",
  async (ctx, input) => {
    const text = await ctx.step("compose", () => `Hello, ${input.name}!`);
    const receipt = await ctx.activity(sendEmail, { to: `${input.name.toLowerCase()}@example.com`, text }, {
      startToClose: "10s",
      retry: { maximumAttempts: 3 },
    });
    await ctx.sleep("1s");
    return { greeting: text, receipt };
  },
);

async function main() {
  const client = new Client(connection);
  let ok = false;
  try {
    const result = await client.execute(greet, { name: "Ada" }, { queue: QUEUE, workflowId: `greet-${tag}`, timeout: "30s" });
    console.log("result:", JSON.stringify(result));
    ok = result.greeting === "Hello, Ada!" && result.receipt.sent && result.receipt.to === "ada@example.com";
  } finally {
    await client.close();
  }
  report("hello", ok);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
