/**
 * Replaying stored runs against the current code, before a deploy (protocol
 * 5.3a "replayer"): read-only, every call returns its journal result, and
 * the replay stops at the first call past the journal.
 */
import type { Client } from "./client.js";
import type { JournalEntry, UpdateRow, WorkflowDef } from "./types.js";
import { Nondeterminism } from "./errors.js";
import { runWorkflow } from "./workflow.js";

export interface ReplayResult {
  workflowId: string;
  runId: string;
  /** null when the run replays; else what does not match */
  problem: Error | null;
}

/**
 * Replays the stored journals of runs of `workflow`'s type (the latest
 * first; `status` filters, e.g. "running") against its code.
 */
export async function replay(client: Client, workflow: WorkflowDef<any, any>, options: { status?: string; limit?: number } = {}): Promise<ReplayResult[]> {
  const runs = await client.pool.query(
    `SELECT workflow_id, run_id, input, attempt, cancel_requested FROM durable.workflows
      WHERE workflow_type = $1 AND ($2::text IS NULL OR status = $2)
      ORDER BY run_id DESC LIMIT $3`,
    [workflow.name, options.status ?? null, options.limit ?? null],
  );
  const out: ReplayResult[] = [];
  for (const run of runs.rows) {
    const rows = (
      await client.pool.query("SELECT seq, kind, name, status, result, error, input FROM durable.journal WHERE run_id = $1 ORDER BY seq", [run.run_id])
    ).rows;
    const journal: JournalEntry[] = rows.map(({ input: _input, ...e }) => e);
    // an accepted update's step input holds its args and the wait it came in
    const updates: UpdateRow[] = rows
      .filter((r) => r.kind === "update")
      .map((r) => ({ update_id: r.input?.update_id, name: r.name, args: r.input?.args ?? null, state: r.status, seq: r.seq, waiting_on: r.input?.waiting_on ?? null }));
    const { outcome, ctx } = await runWorkflow(
      workflow.fn,
      { token: "0", workflow_id: run.workflow_id, run_id: run.run_id, workflow_type: workflow.name, input: run.input, attempt: run.attempt, journal, cancel_requested: run.cancel_requested, updates },
      null,
      "query",
    );
    let problem: Error | null = null;
    if (outcome.type === "taskError") problem = outcome.cause instanceof Error ? outcome.cause : new Error(String(outcome.cause));
    const last = journal.length ? journal[journal.length - 1].seq : 0;
    const ended = outcome.type === "complete" || outcome.type === "fail" || outcome.type === "continueAsNew";
    if (problem === null && ended && ctx._lastSeq < last) {
      const e = journal.find((x) => x.seq === ctx._lastSeq + 1)!;
      problem = new Nondeterminism(e.seq, `the code finished, the journal goes on to ${e.kind} "${e.name}"`);
    }
    out.push({ workflowId: run.workflow_id, runId: run.run_id, problem });
  }
  return out;
}
