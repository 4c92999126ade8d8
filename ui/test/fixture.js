// What the browser test and the screenshot script share: the database of
// PG* (or UI_TEST_DSN), a real worker process, the UI server process, and
// the workflows they start.
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";

export const UI_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** A connection string for the database of the PG* variables (as the e2e tests get it). */
export function testDsn() {
  if (process.env.UI_TEST_DSN) return process.env.UI_TEST_DSN;
  const e = process.env;
  const q = new URLSearchParams();
  if (e.PGHOST) q.set("host", e.PGHOST);
  if (e.PGPORT) q.set("port", e.PGPORT);
  return `postgresql://${encodeURIComponent(e.PGUSER || "postgres")}@/${encodeURIComponent(e.PGDATABASE || "postgres")}?${q}`;
}

/** The same server as another role (libpq's user parameter wins over the URL's user). */
export function dsnAs(dsn, role) {
  if (!/^postgres(ql)?:\/\//.test(dsn)) return `${dsn} user=${role}`;   // key=value form
  return dsn.replace(/^(postgres(?:ql)?:\/\/)([^@/]*@)?/, `$1${encodeURIComponent(role)}@`);
}

/** Start a child process; resolve with it once a line of its output matches re (and the match). */
export function startProcess(args, { env = {}, ready, name, timeoutMs = 20_000 }) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, { cwd: UI_DIR, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    const timer = setTimeout(() => reject(new Error(`${name} did not start within ${timeoutMs} ms:\n${out}`)), timeoutMs);
    const onData = (b) => {
      out += b;
      if (process.env.UI_TEST_VERBOSE) process.stderr.write(`[${name}] ${b}`);
      const m = ready && out.match(ready);
      if (m) {
        clearTimeout(timer);
        ready = null;
        resolve({ proc: p, match: m, output: () => out });
      }
    };
    p.stdout.on("data", onData);
    p.stderr.on("data", onData);
    p.on("exit", (code) => {
      clearTimeout(timer);
      if (ready) reject(new Error(`${name} exited with ${code}:\n${out}`));
    });
    p.output = () => out;
  });
}

export async function stopProcess(p) {
  if (!p || p.exitCode !== null) return;
  const done = new Promise((r) => p.once("exit", r));
  p.kill("SIGTERM");
  const t = setTimeout(() => p.kill("SIGKILL"), 5000);
  await done;
  clearTimeout(t);
}

/** The UI server on a free port of 127.0.0.1; returns {proc, url}. */
export async function startUI(dsn, { env = {}, args = [] } = {}) {
  const r = await startProcess(["server.js", "--port", "0", ...args],
    { env: { DURABLE_UI_DSN: dsn, DURABLE_UI_AUTH: "", ...env }, ready: /listening on (http:\/\/\S+\/)/, name: "ui" });
  return { proc: r.proc, url: r.match[1].replace(/\/$/, "") };
}

export async function startWorker(dsn, queue) {
  const r = await startProcess(["test/worker.js"], { env: { UI_TEST_DSN: dsn, UI_TEST_QUEUE: queue },
    ready: /worker ready/, name: "worker" });
  return r.proc;
}

export function connect(dsn) {
  return new pg.Pool({ connectionString: dsn, max: 2 });
}

/** Poll fn until it returns a truthy value (the engine's work is asynchronous to the test). */
export async function until(what, fn, timeoutMs = 15_000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Orders that stop where a run page has something on every panel: the
 * step done, the child closed, the charge activity in backoff after a
 * failed attempt, the pack activity held by the worker, the timer and the
 * signal wait pending.
 */
export async function startOrder(db, id, queue, customer = "c-42") {
  await db.query("SELECT durable.wf_start('ui_order', $1, $2, $3, $4)",
    [{ item: "teapot", customer }, id, queue, { search_attributes: { CustomerId: customer, Region: "eu" }, memo: { note: "made by the UI test" } }]);
}

export async function orderSettled(db, id) {
  await until(`${id} waiting with its activities`, async () => {
    const r = await db.query(
      `SELECT count(*) FILTER (WHERE kind = 'activity' AND name = 'ui_charge' AND activity_state = 'backoff') AS charge,
              count(*) FILTER (WHERE kind = 'activity' AND name = 'ui_pack' AND activity_state = 'started') AS pack,
              count(*) FILTER (WHERE kind = 'signal' AND status = 'pending') AS wait
         FROM durable.journal WHERE workflow_id = $1`, [id]);
    const x = r.rows[0];
    return x.charge === "1" && x.pack === "1" && x.wait === "1";
  });
}
