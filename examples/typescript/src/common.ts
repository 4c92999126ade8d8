/** Connection and queues shared by the examples' worker and clients. */
import type { Connection } from "durable-worker";

/** DURABLE_DSN, else the PG* environment variables (PGHOST, PGPORT, PGUSER, PGDATABASE). */
export const connection: Connection = process.env.DURABLE_DSN ?? {};

/** Workflows and most activities. */
export const QUEUE = process.env.EXAMPLES_QUEUE ?? "ts_examples";
/** The fan-out's activities, on a worker with more slots. */
export const WORK_QUEUE = QUEUE + "_work";

/** A unique suffix for workflow ids and test data of one run of an example. */
export const tag = `${process.pid}-${Date.now()}`;

export function report(example: string, ok: boolean): never {
  console.log(`${example} example: ${ok ? "OK" : "UNEXPECTED RESULT"}`);
  process.exit(ok ? 0 : 1);
}
