// The web UI in a real browser (Debian's chromium through playwright-core)
// against a real PostgreSQL server with real workflows run by a real
// worker process (the TypeScript SDK, test/worker.js).  Each test opens a
// page, acts as an operator would, and checks what the page then shows.
//
//   PGHOST=... PGPORT=... PGUSER=postgres PGDATABASE=... node --test test/ui.test.js
//
// The database needs durable in shared_preload_libraries (timers,
// schedules).  test/e2e/test_ui.sh runs this on a fresh cluster.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { testDsn, dsnAs, startUI, startProcess, startWorker, stopProcess, connect, until,
         startOrder, orderSettled } from "./fixture.js";

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const QUEUE = "ui_test";
const XSS_ID = `<img src=x onerror="window.__xss=1"><b>bold</b>`;
const WAIT = 10_000;   // how long the page may take to show something (live updates come within a second)
// an hourly cron spec whose minute is half an hour away: it does not fire
// on its own during the test, and the hour before now holds one fire time
const SPEC = `${(new Date().getUTCMinutes() + 30) % 60} * * * *`;

let db, worker, ui, browser, page;
let nobody, client, locked;   // more UI servers: as a role without rights, as a client, with basic auth
const procs = [];
const dsn = testDsn();

before(async () => {
  db = connect(dsn);
  await db.query("CREATE EXTENSION IF NOT EXISTS durable");
  await db.query(`DO $$ BEGIN
      IF NOT EXISTS (SELECT 1 FROM durable.namespaces WHERE namespace = 'ui_other') THEN
        PERFORM durable.namespace_create('ui_other', '3 days');
      END IF;
      DROP ROLE IF EXISTS ui_test_nobody;
      IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ui_test_client') THEN
        PERFORM durable.revoke_all('ui_test_client');
        DROP ROLE ui_test_client;
      END IF;
    END $$`);
  await db.query("CREATE ROLE ui_test_nobody LOGIN");
  await db.query("CREATE ROLE ui_test_client LOGIN");
  await db.query("SELECT durable.grant_client('ui_test_client', 'default')");

  // the processes start side by side
  [worker, ui, nobody, client, locked] = await Promise.all([
    startWorker(dsn, QUEUE),
    startUI(dsn),
    startUI(dsnAs(dsn, "ui_test_nobody")),
    startUI(dsnAs(dsn, "ui_test_client")),
    startUI(dsn, { env: { DURABLE_UI_AUTH: "ops:s3cret pass" } }),
  ]);
  procs.push(worker, ...[ui, nobody, client, locked].map((u) => u.proc));

  for (const id of ["order-1", "order-2", "order-3", "order-4"]) await startOrder(db, id, QUEUE);
  await db.query("SELECT durable.wf_start('ui_loop', '{}', 'loop-1', $1)", [QUEUE]);
  // runs nobody serves: they stay running
  await db.query("SELECT durable.wf_start('ui_tick', '{}', $1, 'ui_idle')", [XSS_ID]);
  await db.query(`SELECT durable.wf_start_many('ui_bulk', array_fill('{}'::jsonb, ARRAY[25]),
                    ARRAY(SELECT 'bulk-' || lpad(i::text, 2, '0') FROM generate_series(1, 25) i), 'ui_idle')`);
  await db.query("SELECT durable.schedule_create('ui_sched', $1, 'ui_tick', '{\"from\": \"schedule\"}', $2)",
    [SPEC, { queue: QUEUE }]);
  for (const id of ["order-1", "order-2", "order-3", "order-4"]) await orderSettled(db, id);
  // a signal nobody waits for stays buffered
  await db.query(`SELECT durable.wf_signal('order-1', 'note', '{"text": "fragile, handle with care"}')`);
  await until("loop-1 to finish its three runs",
    async () => (await db.query("SELECT durable.wf_status('loop-1') AS s")).rows[0].s === "completed");

  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on("pageerror", (e) => console.error(`page error: ${e.message}`));
  page.on("dialog", (d) => {   // no page of the UI opens a JS dialog: one would be an injected script
    console.error(`unexpected JS dialog: ${d.message()}`);
    d.dismiss();
  });
});

after(async () => {
  if (browser) await browser.close();
  for (const p of procs.reverse()) await stopProcess(p);
  if (db) {
    await db.query("SELECT durable.revoke_all('ui_test_client')").catch(() => {});
    await db.query("DROP ROLE IF EXISTS ui_test_client").catch(() => {});
    await db.query("DROP ROLE IF EXISTS ui_test_nobody").catch(() => {});
    await db.end();
  }
});

// --- helpers ---------------------------------------------------------------

/** Wait until an element matching selector shows text (a string or RegExp). */
async function see(selector, text, p = page) {
  const loc = text === undefined ? p.locator(selector) : p.locator(selector, { hasText: text });
  await loc.first().waitFor({ state: "visible", timeout: WAIT });
  return loc.first();
}

/** Open an action's dialog with the button, fill its fields, confirm. */
async function act(button, fields = {}) {
  await page.locator("#actions button, button", { hasText: new RegExp(`^${button}$`) }).first().click();
  const dlg = page.locator("dialog[open]");
  await dlg.waitFor({ timeout: WAIT });
  for (const [name, value] of Object.entries(fields)) await dlg.locator(`[name="${name}"]`).fill(value);
  await dlg.locator("button[type=submit]").click();
  return dlg;
}

async function confirmed(dlg) {
  await dlg.waitFor({ state: "detached", timeout: WAIT });
}

const rowOf = (text) => page.locator("table.list tbody tr", { hasText: text });
/** The list row whose first cell is exactly id. */
async function rowWithId(id) {
  const row = page.locator("table.list tbody tr", { has: page.locator("td:first-child", { hasText: new RegExp(`^${id}$`) }) });
  await row.first().waitFor({ timeout: WAIT });
  return row.first();
}
const url = (path) => `${ui.url}${path}`;

// --- workflows list ----------------------------------------------------------

test("the workflows list shows each run's status, type, queue, times and search attributes", async () => {
  await page.goto(url("/workflows"));
  const row = await rowWithId("order-1");
  const text = await row.innerText();
  for (const want of ["Running", "ui_order", QUEUE, "CustomerId=c-42", "Region=eu"]) {
    assert.ok(text.includes(want), `the order-1 row shows ${want}: ${text}`);
  }
  assert.match(text, /\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/, "its start time");
  const done = await (await rowWithId("order-1-pick")).innerText();
  assert.ok(done.includes("Completed"), `a closed run shows Completed: ${done}`);
});

test("a visibility query filters the list, and a malformed one shows the engine's DU001", async () => {
  await page.goto(url("/workflows"));
  await page.fill("#query", "WorkflowType = 'ui_loop'");
  await page.click("form.query button[type=submit]");
  await page.waitForURL(/q=WorkflowType/);
  await see("table.list tbody tr", "loop-1");
  const rows = await page.locator("table.list tbody tr").allInnerTexts();
  assert.equal(rows.length, 3, `three runs of loop-1: ${rows.join(" | ")}`);
  assert.ok(rows.every((r) => r.includes("ui_loop")), "only ui_loop runs");
  assert.equal(rows.filter((r) => r.includes("Continued as new")).length, 2);
  assert.equal(rows.filter((r) => r.includes("Completed")).length, 1);

  await page.fill("#query", "WorkflowType = ");
  await page.click("form.query button[type=submit]");
  const err = await see(".error", "invalid list query");
  const text = await err.innerText();
  assert.ok(text.includes("position 16") && text.includes("DU001"), `the engine's error with its position and SQLSTATE: ${text}`);
  assert.equal(await page.locator("table.list").count(), 0, "no rows with an error");
});

test("pages follow wf_list's keyset tokens: no run twice, the last page has no next link", async () => {
  await page.goto(url(`/workflows?${new URLSearchParams({ q: "WorkflowType = 'ui_bulk'", size: "10" })}`));
  const seen = [];
  for (const expected of [10, 10, 5]) {
    await see("table.list tbody tr", "bulk-");
    const ids = await page.locator("table.list tbody tr td:first-child").allInnerTexts();
    assert.equal(ids.length, expected, `a page of ${expected}: ${ids}`);
    seen.push(...ids);
    const next = page.locator("nav.pager a[rel=next]");
    if (expected === 5) {
      assert.equal(await next.count(), 0, "the last page has no next page");
    } else {
      await next.click();
      await page.waitForURL(/page=/);
    }
  }
  assert.equal(new Set(seen).size, 25, "25 different runs over three pages");
  assert.deepEqual(seen, [...seen].sort().reverse(), "newest first, in order across pages");
});

test("data is shown as text: a workflow id made of HTML is not markup", async () => {
  await page.goto(url(`/workflows?${new URLSearchParams({ q: "WorkflowType = 'ui_tick' AND TaskQueue = 'ui_idle'" })}`));
  const row = await see("table.list tbody tr", "<b>bold</b>");
  assert.ok((await row.innerText()).includes(XSS_ID), "the id is shown as it is");
  assert.equal(await page.locator("table.list b, table.list img").count(), 0, "no element made from data");
  await row.locator("a").first().click();
  await see("#workflow-id", "<b>bold</b>");
  assert.equal(await page.locator("main b:has-text('bold'), main img[src=x]").count(), 0);
  assert.equal(await page.evaluate(() => window.__xss), undefined, "no injected script ran");
});

test("the list updates without a reload when a run starts", async () => {
  await page.goto(url(`/workflows?${new URLSearchParams({ q: "WorkflowType = 'ui_tick'" })}`));
  await see("table.list tbody tr");
  await page.evaluate(() => (window.__samePage = true));
  await db.query("SELECT durable.wf_start('ui_tick', '{}', 'live-1', 'ui_idle')");
  await see("table.list tbody tr", "live-1");
  assert.equal(await page.evaluate(() => window.__samePage), true, "the same page, not a reload");
});

// --- one run -------------------------------------------------------------------

test("a run page shows its timeline, journal, pending activities, timers, buffered signals and children", async () => {
  await page.goto(url("/workflow?id=order-4"));
  await see("#run-status", "Running");
  const history = await (await see("#history", "activity_attempt_failed")).innerText();
  for (const e of ["workflow_started", "step_recorded", "child_scheduled", "child_completed", "activity_scheduled",
                   "signal_scheduled", "sleep_scheduled"]) {
    assert.ok(history.includes(e), `history shows ${e}`);
  }
  const journal = await (await see("#journal", "price")).innerText();
  assert.ok(journal.includes("42.5") && journal.includes("teapot"), `the step's result: ${journal}`);
  for (const name of ["ui_child", "ui_charge", "ui_pack", "approve", "sleep"]) assert.ok(journal.includes(name), `journal entry ${name}`);

  const charge = await (await see("#pending tr", "ui_charge")).innerText();
  assert.match(charge, /backoff/, "the failed activity waits for its retry");
  assert.match(charge, /\t1\t/, "after attempt 1");
  assert.match(charge, /in 59 min|in 1 h/, `its next retry in an hour: ${charge}`);
  assert.match(charge, /card declined/, "with its last error");
  assert.match(await (await see("#pending tr", "ui_pack")).innerText(), /started/, "the other one runs on a worker");
  assert.match(await (await see("#timers tr", "Pending")).innerText(), /in 59 min|in 1 h/, "the timer fires in an hour");

  await page.goto(url("/workflow?id=order-1"));
  const signal = await (await see("#signals tr", "note")).innerText();
  assert.ok(signal.includes("fragile, handle with care"), `the buffered signal's payload: ${signal}`);

  // JSON is folded to one line and pretty when opened
  const folded = page.locator("#history details.json").first();
  assert.equal(await folded.locator("pre").isVisible(), false, "folded");
  await folded.locator("summary").click();
  const pretty = await folded.locator("pre").innerText();
  assert.match(pretty, /^\{\n {2}"input": \{\n {4}"item": "teapot",\n {4}"customer": "c-42"\n {2}\},/, `pretty JSON: ${pretty}`);

  // children and parent are links
  await (await see("#children a", "order-1-pick")).click();
  await see("#workflow-id", "order-1-pick");
  await see("#run-status", "Completed");
  await (await see("#parent-link", "order-1")).click();
  await see("#workflow-id", /^order-1$/);
});

test("a run page shows the chain of continue-as-new runs", async () => {
  await page.goto(url("/workflow?id=loop-1"));
  await see("#run-status", "Completed");
  const chain = await page.locator("#runs li").allInnerTexts();
  assert.equal(chain.length, 3, `three runs: ${chain}`);
  assert.match(chain[0], /#1.*Continued as new/);
  assert.match(chain[1], /#2.*Continued as new/);
  assert.match(chain[2], /#3.*Completed/);
  await page.locator("#runs li a", { hasText: "#1" }).click();
  await see("#older-run", "not the latest");
  await see("#history", "continued_as_new");
  await see("#journal", "round-0");
});

test("an unknown workflow id shows the engine's DU005", async () => {
  await page.goto(url("/workflow?id=no-such-order"));
  const text = await (await see(".error", 'workflow "no-such-order" does not exist')).innerText();
  assert.ok(text.includes("DU005") && text.includes("Check the workflow id"), `message, hint and SQLSTATE: ${text}`);
});

test("a run page updates without a reload when a signal arrives", async () => {
  await page.goto(url("/workflow?id=order-4"));
  await see("#run-status", "Running");
  await page.evaluate(() => (window.__samePage = true));
  await db.query(`SELECT durable.wf_signal('order-4', 'note', '{"live": true}')`);
  await see("#signals tr", "live");
  assert.equal(await page.evaluate(() => window.__samePage), true, "the same page, not a reload");
});

// --- actions -------------------------------------------------------------------

test("signal: the JSON editor refuses invalid JSON; the sent signal shows in the history", async () => {
  await page.goto(url("/workflow?id=order-1"));
  await see("#run-status", "Running");
  await page.locator("#actions button", { hasText: "Signal" }).click();
  const dlg = page.locator("dialog[open]");
  await dlg.locator("[name=signal]").fill("approve");
  await dlg.locator("[name=payload]").fill('{"by": ');
  await see("dialog[open] .json-status", "Invalid JSON");
  assert.equal(await dlg.locator("button[type=submit]").isDisabled(), true, "invalid JSON cannot be sent");
  await dlg.locator("[name=payload]").fill('{"by": "ops"}');
  await see("dialog[open] .json-status", "Valid JSON");
  await dlg.locator("button[type=submit]").click();
  await confirmed(dlg);
  await see("#flash", "Signal approve sent");
  const ev = await see("#history li", "signal_completed");
  assert.match(await ev.innerText(), /ops/, "with its payload");
  await see("#run-status", "Completed");
});

test("terminate: the page shows Terminated; then cancel shows the engine's refusal", async () => {
  await page.goto(url("/workflow?id=order-2"));
  await see("#run-status", "Running");
  await confirmed(await act("Terminate", { reason: "terminated from the UI test" }));
  await see("#run-status", "Terminated");
  await see("#history li", "terminate_requested");
  await see("#history li", "terminated from the UI test");

  const dlg = await act("Cancel", { reason: "too late" });
  const err = await see("dialog[open] .error", "is not running");
  const text = await err.innerText();
  assert.ok(text.includes('workflow "order-2" is not running'), `message: ${text}`);
  assert.ok(text.includes("Its latest run is terminated."), `detail: ${text}`);
  assert.ok(text.includes("Only a running workflow can be signalled"), `hint: ${text}`);
  assert.ok(text.includes("DU007"), `SQLSTATE: ${text}`);
  await dlg.locator("button", { hasText: /^Cancel$/ }).click();
  await confirmed(dlg);
});

test("pause and unpause a workflow", async () => {
  await page.goto(url("/workflow?id=order-3"));
  await see("#run-status", "Running");
  await confirmed(await act("Pause", { reason: "looking into it" }));
  await see("h1 .badge.paused", "Paused");
  await see("#history li", "workflow_paused");
  assert.equal((await db.query("SELECT paused FROM durable.workflows WHERE workflow_id = 'order-3'")).rows[0].paused, true);
  await confirmed(await act("Unpause"));
  await see("#history li", "workflow_unpaused");
  await page.locator("h1 .badge.paused").waitFor({ state: "detached", timeout: WAIT });
});

test("reset replaces the run; cancel asks the new one to cancel", async () => {
  await page.goto(url("/workflow?id=order-3"));
  await see("#run-status", "Running");
  await confirmed(await act("Reset", { to_seq: "3", reason: "redo the payment" }));
  await page.waitForURL(/run=\d+/);
  await see("#history li", "reset_from");
  const chain = await page.locator("#runs li").allInnerTexts();
  assert.equal(chain.length, 2, `the old run and the new one: ${chain}`);
  assert.match(chain[0], /Terminated/);
  // the kept entries are there, the rest is redone by the worker
  await see("#journal tr", "price");
  await see("#pending tr", "ui_charge");
  await confirmed(await act("Cancel", { reason: "customer left" }));
  await see("#history li", "cancel_requested");
  await see("#history li", "customer left");
});

// --- queues ----------------------------------------------------------------------

test("queues: counts, the worker holding a lease, pause and unpause", async () => {
  await page.goto(url("/queues"));
  const row = await see("table.list tbody tr", QUEUE);
  await see("table.list tbody tr", "ui-test-worker");
  const text = await row.innerText();
  assert.match(text, /Active/);
  assert.match(text, /\d+ leased/, `the worker's leases: ${text}`);
  // the queue nobody serves, where 27 runs wait.  Not the worker's own
  // queue: a backend that polled a paused queue keeps seeing it paused
  // after queue_unpause (the trigger that empties the backends' cache of
  // queue settings does not fire on UPDATE OF paused), so the worker would
  // stop taking tasks for the rest of the test; that is the engine's to fix.
  const idle = await see("table.list tbody tr", "ui_idle");
  assert.match(await idle.innerText(), /\t2[78]\t0\t/, "ready and leased counts");
  await idle.locator("button", { hasText: "Pause" }).click();
  let dlg = page.locator("dialog[open]");
  await dlg.locator("[name=note]").fill("maintenance window");
  await dlg.locator("button[type=submit]").click();
  await confirmed(dlg);
  await see("#flash", "Queue ui_idle paused");
  await see("table.list tbody tr:has-text('ui_idle') .badge.paused", "Paused");
  await see("table.list tbody tr:has-text('ui_idle')", "maintenance window");
  const q = await db.query("SELECT paused, note FROM durable.queue_stats WHERE queue = 'ui_idle'");
  assert.deepEqual(q.rows[0], { paused: true, note: "maintenance window" });
  await rowOf("ui_idle").locator("button", { hasText: "Unpause" }).click();
  dlg = page.locator("dialog[open]");
  await dlg.locator("button[type=submit]").click();
  await confirmed(dlg);
  await see("table.list tbody tr:has-text('ui_idle') .badge.ok", "Active");
  assert.equal((await db.query("SELECT paused FROM durable.queue_stats WHERE queue = 'ui_idle'")).rows[0].paused, false);
});

// --- schedules -------------------------------------------------------------------

test("schedules: spec, next fires, overlap; trigger, pause, unpause, backfill", async () => {
  await page.goto(url("/schedules"));
  const row = await see("table.list tbody tr", "ui_sched");
  let text = await row.innerText();
  for (const want of [SPEC, "ui_tick", "skip", "Active", "never fired"]) assert.ok(text.includes(want), `${want}: ${text}`);
  assert.equal(await row.locator("ul.times li").count(), 3, "its next three fire times");

  await row.locator("button", { hasText: "Trigger" }).click();
  let dlg = page.locator("dialog[open]");
  await dlg.locator("button[type=submit]").click();
  await confirmed(dlg);
  await see("#flash", /Triggered: started ui_sched-/);
  await see("table.list tbody tr:has-text('ui_sched') a", "ui_sched-");
  await see("table.list tbody tr:has-text('ui_sched') .status-completed", "Completed");   // the worker ran it

  await rowOf("ui_sched").locator("button", { hasText: "Pause" }).click();
  dlg = page.locator("dialog[open]");
  await dlg.locator("[name=note]").fill("holiday");
  await dlg.locator("button[type=submit]").click();
  await confirmed(dlg);
  await see("table.list tbody tr:has-text('ui_sched') .badge.paused", "Paused");
  await see("table.list tbody tr", "holiday");

  await rowOf("ui_sched").locator("button", { hasText: "Unpause" }).click();
  dlg = page.locator("dialog[open]");
  await dlg.locator("button[type=submit]").click();
  await confirmed(dlg);
  await see("table.list tbody tr:has-text('ui_sched') .badge.ok", "Active");

  // a reversed range: the engine says why
  await rowOf("ui_sched").locator("button", { hasText: "Backfill" }).click();
  dlg = page.locator("dialog[open]");
  const start = await dlg.locator("[name=start]").inputValue();
  const end = await dlg.locator("[name=end]").inputValue();
  await dlg.locator("[name=start]").fill(end);
  await dlg.locator("[name=end]").fill(start);
  await dlg.locator("button[type=submit]").click();
  text = await (await see("dialog[open] .error", "backfill range is empty")).innerText();
  assert.ok(text.includes("DU001") && text.includes("Pass a finite start earlier than the end"), text);
  // the hour before now: one fire time
  await dlg.locator("[name=start]").fill(start);
  await dlg.locator("[name=end]").fill(end);
  await dlg.locator("button[type=submit]").click();
  await confirmed(dlg);
  await see("#flash", /Backfill started 1 run\./);
  const fires = await db.query("SELECT fires FROM durable.schedule_list WHERE name = 'ui_sched'");
  assert.equal(fires.rows[0].fires, "2", "the trigger and the backfilled fire");
});

// --- namespaces --------------------------------------------------------------------

test("namespaces: each with its retention", async () => {
  await page.goto(url("/namespaces"));
  const row = await see("#namespace-list tr", "ui_other");
  assert.match(await row.innerText(), /3 days/);
  await see("#namespace-list tr", "default");
  await row.locator("a", { hasText: "ui_other" }).click();
  await page.waitForURL(/\/workflows\?ns=ui_other/);
  await see("table, .empty", /No runs match/);
});

// --- rights ------------------------------------------------------------------------

test("a role without rights sees the permission error, not data", async () => {
  const p = await browser.newPage();
  try {
    await p.goto(`${nobody.url}/workflows`);
    const err = await (await see(".error", "permission denied", p)).innerText();
    assert.ok(err.includes("42501"), `the server's SQLSTATE: ${err}`);
    assert.equal(await p.locator("table.list").count(), 0, "no rows");
    await p.goto(`${nobody.url}/workflow?id=order-1`);
    await see(".error", "permission denied", p);
    assert.equal(await p.locator("#journal").count(), 0, "no journal");
  } finally {
    await p.close();
  }

  const c = await browser.newPage();
  try {
    // its own namespace: the data; the admin-only panel: the error
    await c.goto(`${client.url}/workflow?id=order-4`);
    await see("#journal tr", "price", c);
    const sig = await (await see("#signals .error", "permission denied", c)).innerText();
    assert.ok(sig.includes("42501"), sig);
    // another namespace: the engine's own DU009
    await c.goto(`${client.url}/workflows?ns=ui_other`);
    const err = await (await see(".error", 'permission denied for namespace "ui_other"', c)).innerText();
    assert.ok(err.includes("DU009") && err.includes("durable.grant_client"), `message, hint and SQLSTATE: ${err}`);
    await c.goto(`${client.url}/queues`);
    await see(".error", "permission denied for view queue_stats", c);
    // schedules are administration too
    await c.goto(`${client.url}/schedules`);
    await see(".error", "permission denied", c);
  } finally {
    await c.close();
  }
});

// --- the server --------------------------------------------------------------------

test("auth: required beyond localhost; pages, API and /metrics all behind it", async () => {
  const refused = startProcess(["server.js", "--host", "0.0.0.0", "--port", "0"],
    { env: { DURABLE_UI_DSN: dsn, DURABLE_UI_AUTH: "" }, ready: /(?!)/, name: "ui-open", timeoutMs: 10_000 });
  await assert.rejects(refused, /exited with 2[\s\S]*refusing to listen on 0\.0\.0\.0 without authentication/);

  for (const path of ["/workflows", "/api/workflows", "/metrics", "/static/app.js"]) {
    const r = await fetch(`${locked.url}${path}`);
    assert.equal(r.status, 401, `${path} without credentials`);
    assert.match(r.headers.get("www-authenticate"), /^Basic /);
    const bad = await fetch(`${locked.url}${path}`, { headers: { Authorization: `Basic ${Buffer.from("ops:wrong").toString("base64")}` } });
    assert.equal(bad.status, 401, `${path} with a wrong password`);
  }
  const ctx = await browser.newContext({ httpCredentials: { username: "ops", password: "s3cret pass" } });
  const p = await ctx.newPage();
  await p.goto(`${locked.url}/workflows`);
  await see("table.list tbody tr", "order-1", p);
  const m = await p.evaluate(async () => (await fetch("/metrics")).status);
  assert.notEqual(m, 401, "/metrics with the credentials is past auth");
  await ctx.close();
});

test("security: CSP, cross-site POSTs refused, bounded bodies, Host checked", async () => {
  const r = await fetch(url("/workflows"));
  const csp = r.headers.get("content-security-policy");
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'/);
  assert.equal(r.headers.get("x-content-type-options"), "nosniff");

  const body = JSON.stringify({ op: "terminate", args: { workflow_id: "order-4" } });
  const post = (headers, b = body) => fetch(url("/api/action"), { method: "POST", headers, body: b });
  const host = new URL(ui.url).host;
  assert.equal((await post({ "Content-Type": "application/json", Origin: "http://evil.example" })).status, 403, "another origin");
  assert.equal((await post({ "Content-Type": "application/json" })).status, 403, "no origin");
  assert.equal((await post({ "Content-Type": "application/x-www-form-urlencoded", Origin: `http://${host}` })).status, 403,
    "a form another site could post");
  assert.equal((await post({ "Content-Type": "application/json", Origin: `http://${host}` }, "x".repeat(1024 * 1024 + 1))).status, 413);
  assert.equal((await db.query("SELECT durable.wf_status('order-4') AS s")).rows[0].s, "running", "nothing was terminated");
  // DNS rebinding: a page of another name resolving to 127.0.0.1
  const rebound = await new Promise((resolve, reject) => {
    import("node:http").then(({ request }) => {
      const req = request(`${ui.url}/api/workflows`, { headers: { Host: "evil.example" } }, (res) => resolve(res.statusCode));
      req.on("error", reject);
      req.end();
    });
  });
  assert.equal(rebound, 421);
});

test("/metrics: Prometheus text of durable.metrics()", async () => {
  // counters only grow: the scrape's value lies between two reads of the SQL function
  const claimed = async () => Number((await db.query(
    "SELECT coalesce(sum(value), 0) AS v FROM durable.metrics() WHERE sample = 'durable_tasks_claimed_total'")).rows[0].v);
  const before = await claimed();
  const r = await fetch(url("/metrics"));
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  const text = await r.text();
  const types = text.split("\n").filter((l) => l.startsWith("# TYPE "));
  assert.ok(types.length > 0, "some families");
  const names = types.map((l) => l.split(" ")[2]);
  assert.equal(new Set(names).size, names.length, "one TYPE line per family");
  for (const line of text.trimEnd().split("\n")) {
    if (line.startsWith("#")) continue;
    assert.match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\["\\n])*",?)*\})? (-?[0-9.e+-]+|[+-]Inf|NaN)$/,
      `a sample line: ${line}`);
  }
  // what the workers did shows: the queue of this test has samples
  assert.ok(text.includes(`queue="${QUEUE}"`), "samples of the test's queue");
  const after = await claimed();
  const scraped = text.split("\n").filter((l) => l.startsWith("durable_tasks_claimed_total"))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
  assert.ok(before > 0, "the workers' claims were counted");
  assert.ok(scraped >= before && scraped <= after,
    `durable_tasks_claimed_total summed ${scraped}, between the SQL reads ${before} and ${after}`);
});
