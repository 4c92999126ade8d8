/**
 * What each page reads and each action does: only the extension's public
 * functions and views (and, for admins, the two tables grant_admin lets
 * them read: namespaces and buffered signals), every value a parameter.
 * The engine checks the role's rights; an error it raises is shown as is.
 */
import { withTx, UIError } from "./db.js";

const MAX_ROWS = 2000;   // history, journal: a page shows this many and says so

/** The workflows list: one keyset page of wf_list (never OFFSET, never a count). */
export async function workflows(pool, { ns, q, page, size }) {
  return withTx(pool, { ns, readOnly: true }, async (tx) => {
    // one row more than shown says whether there is a next page
    const rows = await tx.query(
      `SELECT workflow_id, run_id, workflow_type, queue, status, created_at, closed_at,
              search_attributes, next_page_token
         FROM durable.wf_list($1, $2, $3)`,
      [q || "", size + 1, page || null]);
    const shown = rows.slice(0, size);
    return {
      rows: shown.map(({ next_page_token, ...r }) => r),
      next: rows.length > size ? shown[shown.length - 1].next_page_token : null,
      now: await now(tx),
    };
  });
}

async function now(tx) {
  return (await tx.query("SELECT now() AS now"))[0].now;
}

/** One workflow: the run asked for (default the latest) and all that belongs to it. */
export async function run(pool, { ns, id, runId }) {
  return withTx(pool, { ns, readOnly: true }, async (tx) => {
    // every run of the workflow id: the chain of continue-as-new, retries
    // and resets (the latest 200).  The view filters rows by the role's
    // rights; the index on (namespace, workflow_id) serves it
    const runs = (await tx.query(
      `SELECT run_id, run_number, status, workflow_type, queue, created_at, closed_at, paused,
              cancel_requested, attempt, parent_run_id
         FROM durable.workflows
        WHERE namespace = $1 AND workflow_id = $2
        ORDER BY run_number DESC LIMIT 200`, [ns, id])).reverse();
    if (runs.length === 0) {
      // nothing the role may read: wf_status raises the engine's own error,
      // DU009 without rights on the namespace or DU005 for an unknown id.
      // Only on this path: it reads the view with the namespace as an
      // expression, which no index serves (a scan of every run)
      await tx.query("SELECT durable.wf_status($1)", [id]);
      throw new UIError(404, `workflow "${id}" has no run in namespace "${ns}"`);
    }
    const latest = runs[runs.length - 1].run_id;
    const selected = runId ? String(runId) : latest;
    if (!runs.some((r) => r.run_id === selected)) {
      throw new UIError(404, `run ${selected} is not a run of workflow "${id}" in namespace "${ns}"`);
    }
    const [current] = await tx.query(
      `SELECT run_id, run_number, status, workflow_type, queue, priority, attempt, paused,
              cancel_requested, parent_run_id, created_at, closed_at, input, output, error,
              options->'search_attributes' AS search_attributes, options->'memo' AS memo
         FROM durable.workflows WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3`,
      [ns, id, selected]);
    const history = await tx.section(
      `SELECT event_time, event_type, seq, details FROM durable.history
        WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3 LIMIT ${MAX_ROWS + 1}`,
      [ns, id, selected]);
    const journal = await tx.section(
      `SELECT seq, kind, name, status, input, result, error, queue, attempt, scheduled_at,
              resolved_at, due_at, activity_state, next_attempt_at, last_error
         FROM durable.journal WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3
        ORDER BY seq LIMIT ${MAX_ROWS + 1}`,
      [ns, id, selected]);
    // signals no signal step took yet: no view has them, grant_admin lets
    // an admin read the table; another role sees its permission error here
    const signals = await tx.section(
      `SELECT signal_no, name, payload, signal_id, created_at FROM durable.signals
        WHERE run_id = $1 AND consumed_seq IS NULL ORDER BY signal_no LIMIT 1000`, [selected]);
    const children = await tx.section(
      `SELECT workflow_id, run_id, workflow_type, status, created_at, closed_at
         FROM durable.workflows WHERE parent_run_id = $1 ORDER BY run_id LIMIT 1000`, [selected]);
    const parent = current.parent_run_id === null ? { rows: [] } : await tx.section(
      `SELECT namespace, workflow_id, run_id, workflow_type, status FROM durable.workflows WHERE run_id = $1`,
      [current.parent_run_id]);
    const published = await tx.section(
      `SELECT name, value, updated_at FROM durable.published_state WHERE run_id = $1 ORDER BY name`, [selected]);
    for (const s of [history, journal]) {
      if (s.rows && s.rows.length > MAX_ROWS) {
        s.rows.length = MAX_ROWS;
        s.truncated = true;
      }
    }
    return { workflow_id: id, latest_run_id: latest, run: current, runs, history, journal,
             signals, children, parent, published, now: await now(tx) };
  });
}

/** Queues: counts, limits and pause from queue_stats, lease holders from task_list (admin views). */
export async function queues(pool, { ns }, seen) {
  return withTx(pool, { ns, readOnly: true }, async (tx) => {
    const rows = await tx.query(
      `SELECT namespace, queue, ready, leased, oldest_ready, paused, note, max_concurrency,
              max_rate, rate_burst, key_concurrency, key_concurrency_overrides, key_rate,
              key_rate_burst, key_on_limit, aging_every::text AS aging_every, aging_up_to
         FROM durable.queue_stats ORDER BY namespace, queue`);
    const leases = await tx.query(
      `SELECT namespace, queue, worker, count(*) AS tasks FROM durable.task_list
        WHERE state = 'leased' AND worker IS NOT NULL GROUP BY 1, 2, 3`);
    const t = await now(tx);
    seen.note(leases, t);
    for (const r of rows) r.workers = seen.get(r.namespace, r.queue);
    return { rows, now: t };
  });
}

/** Schedules (admin view) with their next fire times and latest runs. */
export async function schedules(pool, { ns }) {
  return withTx(pool, { ns, readOnly: true }, async (tx) => {
    const rows = await tx.query(
      `SELECT s.namespace, s.name, s.spec, s.timezone, s.workflow_type, s.queue, s.overlap,
              justify_hours(s.catchup_window)::text AS catchup_window, s.paused, s.note, s.next_fire_at,
              s.last_fire_at, s.last_workflow_id, s.buffered, s.fires, s.skipped, s.created_at,
              ARRAY(SELECT durable.schedule_next_times(s.spec, 3, s.timezone)) AS next_times,
              (SELECT coalesce(jsonb_agg(to_jsonb(w) ORDER BY w.run_id DESC), '[]')
                 FROM (SELECT w.workflow_id, w.run_id, w.status, w.created_at, w.closed_at
                         FROM durable.workflows w
                        WHERE w.namespace = s.namespace AND w.workflow_id = s.last_workflow_id
                        ORDER BY w.run_number DESC LIMIT 1) w) AS last_runs
         FROM durable.schedule_list s ORDER BY s.namespace, s.name`);
    return { rows, now: await now(tx) };
  });
}

/** Namespaces (the table, which grant_admin lets an admin read) and declared search attributes. */
export async function namespaces(pool, { ns }) {
  return withTx(pool, { ns, readOnly: true }, async (tx) => {
    const list = await tx.section(
      `SELECT namespace, retention::text AS retention, created_at FROM durable.namespaces ORDER BY namespace`);
    const attributes = await tx.section(
      `SELECT namespace, name, type, created_at FROM durable.search_attribute_list ORDER BY namespace, name`);
    return { namespaces: list, attributes, now: await now(tx) };
  });
}

/** Who the UI is connected as: shown in the header, so nobody wonders whose rights apply. */
export async function whoami(pool, { ns }) {
  return withTx(pool, { ns, readOnly: true }, async (tx) => (await tx.query(
    `SELECT current_user AS role, current_database() AS database,
            (SELECT extversion FROM pg_extension WHERE extname = 'durable') AS durable_version`))[0]);
}

/** durable.metrics() rows for /metrics. */
export async function metricRows(pool) {
  return withTx(pool, { ns: "default", readOnly: true }, (tx) =>
    tx.query("SELECT family, kind, help, sample, labels, value FROM durable.metrics()"));
}

// an empty field is SQL NULL: the engine then says which argument it needs
const v = (x) => (x === undefined || x === null || String(x).trim() === "" ? null : String(x));

/**
 * Actions: each one fixed statement of the extension's API.  Arguments
 * are passed as they are; the engine validates them (names, JSON, seq,
 * times) and its errors reach the page.
 */
const ACTIONS = {
  signal: (a) => ["SELECT durable.wf_signal($1, $2, $3::jsonb, $4) AS result",
    [v(a.workflow_id), v(a.signal), v(a.payload), v(a.signal_id)]],
  cancel: (a) => ["SELECT durable.wf_cancel($1, $2) AS result", [v(a.workflow_id), v(a.reason)]],
  terminate: (a) => ["SELECT durable.wf_terminate($1, $2) AS result", [v(a.workflow_id), v(a.reason)]],
  reset: (a) => ["SELECT durable.wf_reset($1, $2::int, $3) AS result",
    [v(a.workflow_id), v(a.to_seq), v(a.reason)]],
  pause: (a) => ["SELECT durable.wf_pause($1, $2) AS result", [v(a.workflow_id), v(a.reason)]],
  unpause: (a) => ["SELECT durable.wf_unpause($1, $2) AS result", [v(a.workflow_id), v(a.reason)]],
  queue_pause: (a) => ["SELECT durable.queue_pause($1, $2) AS result", [v(a.queue), v(a.note)]],
  queue_unpause: (a) => ["SELECT durable.queue_unpause($1, $2) AS result", [v(a.queue), v(a.note)]],
  schedule_trigger: (a) => ["SELECT durable.schedule_trigger($1) AS result", [v(a.name)]],
  schedule_pause: (a) => ["SELECT durable.schedule_pause($1, $2) AS result", [v(a.name), v(a.note)]],
  schedule_unpause: (a) => ["SELECT durable.schedule_unpause($1, $2) AS result", [v(a.name), v(a.note)]],
  schedule_backfill: (a) => ["SELECT durable.schedule_backfill($1, $2::timestamptz, $3::timestamptz) AS result",
    [v(a.name), v(a.start), v(a.end)]],
};

export const ACTION_NAMES = Object.keys(ACTIONS);

export async function action(pool, { ns, op, args }) {
  const make = Object.hasOwn(ACTIONS, op) ? ACTIONS[op] : null;
  if (!make) {
    throw new UIError(400, `unknown action ${JSON.stringify(op)}`);
  }
  const [sql, params] = make(args || {});
  return withTx(pool, { ns, readOnly: false }, async (tx) => ({ result: (await tx.query(sql, params))[0].result }));
}
