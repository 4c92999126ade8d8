/**
 * test/bench_worker.ts: the TypeScript worker process of bench/sdk_bench_ts.py
 * (the TypeScript counterpart of sdk_bench.py's --sdk-worker).
 *
 * Workflow type `bench_<steps>`: ctx.step("s<i>", () => i) per step (one
 * step_record, one commit each), then returns {steps, total} (the result
 * rides on the worker's next task_poll).
 *
 *   node dist/test/bench_worker.js --queue Q --steps N [--concurrency 4] [--name NAME]
 *
 * With --sql it runs no SDK: --concurrency plain node-postgres loops (1 by
 * default), each on a connection of its own, make the calls sdk_bench.py's
 * SQL loop makes (task_poll up to 8, then per task step_record per step and
 * task_complete), waking on the queue's NOTIFY: the baseline in the SDK's
 * own language and driver.
 *
 * Connects with the PG* environment (DURABLE_DSN if set); prints "ready"
 * and works until SIGTERM.
 */
import pg from "pg";
import { Worker, defineWorkflow, type Connection } from "../src/index.js";
import { clientConfig } from "../src/pgutil.js";

const connection: Connection = process.env.DURABLE_DSN ?? {};

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

export function benchWorkflow(steps: number) {
  return defineWorkflow<unknown, { steps: number; total: number }>(`bench_${steps}`, async (ctx) => {
    let total = 0;
    for (let i = 0; i < steps; i++) total += await ctx.step(`s${i}`, () => i);
    return { steps, total };
  });
}

/** The plain SQL loop (--sql): no SDK, the same statements as sdk_bench.py's. */
async function sqlLoop(queue: string, steps: number, name: string, connected: () => void): Promise<void> {
  // the SDK's own settings: bigint (tokens) as text, a connect timeout
  const cfg = clientConfig(connection);
  const conn = new pg.Client(cfg);
  const listen = new pg.Client(cfg);
  await conn.connect();
  await listen.connect();
  let wake: (() => void) | null = null;
  listen.on("notification", () => wake?.());
  await listen.query(`LISTEN "durable_${queue}"`);
  let stop = false;
  process.on("SIGTERM", () => {
    stop = true;
    wake?.();
  });
  connected();
  while (!stop) {
    const { rows } = await conn.query({ name: "poll", text: "SELECT token FROM durable.task_poll($1, $2, 8, '30 s')", values: [queue, name] });
    for (const { token } of rows) {
      let total = 0;
      for (let i = 0; i < steps; i++) {
        await conn.query({ name: "step", text: "SELECT durable.step_record($1, $2, $3, $4::jsonb)", values: [token, i + 1, `s${i}`, JSON.stringify(i)] });
        total += i;
      }
      await conn.query({ name: "complete", text: "SELECT durable.task_complete($1, $2::jsonb)", values: [token, JSON.stringify({ steps, total })] });
    }
    if (rows.length === 0 && !stop) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = null;
    }
  }
  await conn.end();
  await listen.end();
}

async function main(args: string[]): Promise<void> {
  const queue = option(args, "--queue");
  const steps = Number(option(args, "--steps") ?? 1);
  if (queue === undefined || !(steps >= 0)) throw new Error("usage: bench_worker.js --queue Q --steps N [--sql] [--concurrency C] [--prefetch P] [--name NAME]");
  if (args.includes("--sql")) {
    const name = option(args, "--name") ?? `bench-sql-${process.pid}`;
    const loops = Number(option(args, "--concurrency") ?? 1);
    let connecting = loops;
    const connected = () => {
      if (--connecting === 0) console.log("ready");
    };
    await Promise.all(Array.from({ length: loops }, (_, i) => sqlLoop(queue, steps, `${name}-${i}`, connected)));
    return;
  }
  const worker = new Worker({
    connection,
    queue,
    name: option(args, "--name"),
    concurrency: Number(option(args, "--concurrency") ?? 4),
    prefetch: option(args, "--prefetch") === undefined ? undefined : Number(option(args, "--prefetch")),
    lease: "30s",
    pollInterval: "1s",
    grace: "5s",
    workflows: [benchWorkflow(steps)],
  });
  console.log("ready");
  await worker.run();
}

if (import.meta.url === `file://${process.argv[1]}`) await main(process.argv.slice(2));
