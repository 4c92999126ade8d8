/**
 * An in-memory stand-in for one run of the engine: the journal rules of
 * protocol sections 3.2, 3.3, 4 and 5.3, enough to replay workflow code
 * task after task without a server.
 */
import type { ErrorObject } from "../src/errors.js";
import type { JournalEntry, UpdateRow } from "../src/types.js";
import { runWorkflow, type Command, type Outcome, type RunOptions, type StepRecord, type TaskIO, type WorkflowContext } from "../src/workflow.js";

export class DbError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

type Fn = (ctx: WorkflowContext<any>, input: any) => Promise<unknown>;

export class FakeRun {
  journal = new Map<number, JournalEntry & { input?: unknown }>();
  updates: UpdateRow[] = [];
  cancelRequested = false;
  published = new Map<string, unknown>();
  searchAttributes: Record<string, unknown> = {};
  /** every call a task made, in order, for assertions */
  log: string[] = [];
  closed: Outcome | null = null;
  tasks = 0;
  /** the token of the task in progress: any other is stale (DU004), as the engine fences tokens */
  private token: string | null = null;

  constructor(
    readonly fn: Fn,
    readonly input: unknown = null,
  ) {}

  private put(seq: number, kind: string, name: string, status: JournalEntry["status"], result: unknown = null, error: ErrorObject | null = null) {
    const e = this.journal.get(seq);
    if (e !== undefined) {
      if (e.kind === kind && e.name === name) return false;
      throw new DbError("DU003", `nondeterminism in step ${seq}: the journal holds ${e.kind} "${e.name}", the code asked for ${kind} "${name}"`);
    }
    this.journal.set(seq, { seq, kind, name, status, result, error });
    return true;
  }

  private recordSteps(steps: StepRecord[]) {
    for (const s of steps) this.put(s.seq, "local", s.name, "completed", s.result ?? null);
  }

  private applyCommand(c: Command) {
    const seq = c.seq as number;
    switch (c.type) {
      case "cancel": {
        const e = this.journal.get(seq);
        if (e === undefined) throw new DbError("DU002", `no entry ${seq}`);
        if (e.status === "pending" && e.kind !== "child") {
          e.status = "cancelled";
          e.error = { type: "cancelled", message: "cancelled by the workflow" };
        }
        return;
      }
      case "activity":
        this.put(seq, "activity", c.name as string, "pending");
        this.journal.get(seq)!.input = c.input;
        return;
      case "sleep":
        this.put(seq, "sleep", (c.name as string) ?? "sleep", "pending");
        return;
      case "signal": {
        const name = c.names ? "[" + (c.names as string[]).map((n) => JSON.stringify(n)).join(", ") + "]" : (c.name as string);
        this.put(seq, "signal", name, "pending");
        return;
      }
      case "child":
        this.put(seq, "child", c.name as string, "pending");
        return;
      case "signal_external":
        this.put(seq, "signal_external", c.signal as string, "completed");
        return;
      case "cancel_external":
        this.put(seq, "cancel_external", c.workflow_id as string, "completed");
        return;
      default:
        throw new DbError("DU002", `unknown command ${String(c.type)}`);
    }
  }

  private applyUpdates(commands: Command[]) {
    for (const c of commands) {
      const u = this.updates.find((x) => x.update_id === c.update_id)!;
      if (c.type === "reject_update") {
        this.updates = this.updates.filter((x) => x !== u);
        continue;
      }
      const failed = "error" in c;
      this.put(c.seq as number, "update", u.name, failed ? "failed" : "completed", failed ? null : (c.result ?? null), failed ? (c.error as ErrorObject) : null);
      Object.assign(u, { state: failed ? "failed" : "completed", seq: c.seq, waiting_on: c.waiting_on });
    }
  }

  /** The calls of the task with `token`; each is refused (DU004) once that task ended. */
  io(token: string): TaskIO {
    const fence = () => {
      if (token !== this.token) {
        this.log.push(`DU004 ${token}`);
        throw new DbError("DU004", `token ${token} is stale`);
      }
    };
    return {
      recordSteps: async (steps) => {
        fence();
        this.log.push(`step_record ${steps.map((s) => `${s.seq}:${s.name}`).join(",")}`);
        this.recordSteps(steps);
      },
      transaction: async (fn, stepsFor) => {
        fence();
        const r = await fn({} as any);
        fence();
        this.log.push("transaction");
        this.recordSteps(stepsFor(r));
        return r;
      },
      upsertSearchAttributes: async (seq, attributes, steps) => {
        fence();
        this.recordSteps(steps);
        if (this.put(seq, "upsert", "search_attributes", "completed")) Object.assign(this.searchAttributes, attributes);
      },
      publish: async (name, value, steps) => {
        fence();
        this.log.push(`publish ${name}`);
        this.recordSteps(steps);
        this.published.set(name, value);
      },
      sendUpdates: async (commands, steps) => {
        fence();
        this.log.push(`task_updates ${commands.length}`);
        this.recordSteps(steps);
        this.applyUpdates(commands);
      },
      judge: async (call) => {
        fence();
        // the fake applies to a copy: nothing changes, but the error is the engine's
        const saved = new Map([...this.journal].map(([k, v]) => [k, { ...v }]));
        try {
          if ("local" in call) this.recordSteps([call.local]);
          else if ("command" in call) this.applyCommand(call.command);
          else this.put(call.upsert.seq, "upsert", "search_attributes", "completed");
        } finally {
          this.journal = saved;
        }
        throw new Error("the fake engine accepted a mismatch");
      },
    };
  }

  /** One workflow task: run the code against the journal, apply what it ends with. */
  async task(mode: "task" | "query" = "task", options: RunOptions = {}): Promise<{ outcome: Outcome; ctx: WorkflowContext }> {
    this.tasks += 1;
    const token = String(this.tasks);
    if (mode === "task") this.token = token;
    const journal = [...this.journal.values()].sort((a, b) => a.seq - b.seq).map(({ input: _input, ...e }) => ({ ...e }));
    const r = await runWorkflow(
      this.fn,
      {
        token,
        workflow_id: "wf-1",
        run_id: "1",
        workflow_type: "test",
        input: this.input,
        attempt: 1,
        journal,
        cancel_requested: this.cancelRequested,
        updates: this.updates.length ? this.updates.map((u) => ({ ...u })) : null,
      },
      mode === "task" ? this.io(token) : null,
      mode,
      options,
    );
    if (mode === "query") return r;
    // however it ended, the task's token is stale from now on
    this.token = null;
    const o = r.outcome;
    if (o.type === "suspend") {
      this.log.push(`suspend ${o.commands.map((c) => `${c.seq}:${c.type}`).join(",")}`);
      this.recordSteps(o.steps);
      for (const c of o.commands) this.applyCommand(c);
    } else if (o.type === "complete" || o.type === "continueAsNew" || o.type === "fail") {
      if (o.type !== "fail") this.recordSteps(o.steps);
      this.closed = o;
      // closing a run cancels its pending steps (protocol 3.4)
      for (const e of this.journal.values()) if (e.status === "pending") e.status = "cancelled";
    }
    return r;
  }

  resolve(seq: number, result: unknown = null) {
    const e = this.journal.get(seq)!;
    if (e.status !== "pending") throw new Error(`entry ${seq} is ${e.status}`);
    e.status = "completed";
    e.result = result;
  }

  failEntry(seq: number, error: ErrorObject) {
    const e = this.journal.get(seq)!;
    e.status = "failed";
    e.error = error;
  }

  /** A signal arriving for the pending wait of that name (lowest seq). */
  signal(name: string, payload: unknown) {
    const waits = [...this.journal.values()].filter((e) => e.kind === "signal" && e.status === "pending").sort((a, b) => a.seq - b.seq);
    for (const e of waits) {
      if (e.name === name) return this.resolve(e.seq, payload);
      if (e.name.startsWith("[") && (JSON.parse(e.name) as string[]).includes(name)) return this.resolve(e.seq, { name, payload });
    }
    throw new Error(`no wait for signal ${name}`);
  }

  requestUpdate(id: string, name: string, args: unknown) {
    this.updates.push({ update_id: id, name, args, state: "requested", seq: null, waiting_on: null });
  }

  entries(): string[] {
    return [...this.journal.values()].sort((a, b) => a.seq - b.seq).map((e) => `${e.seq}:${e.kind}:${e.name}:${e.status}`);
  }

  pending(kind?: string): number[] {
    return [...this.journal.values()].filter((e) => e.status === "pending" && (kind === undefined || e.kind === kind)).map((e) => e.seq);
  }
}
