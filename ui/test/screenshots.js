// Makes the README's two screenshots, docs/ui-workflows.png and
// docs/ui-run.png: a throw-away database on the server of PG* (or
// UI_TEST_DSN), a real worker, the UI server and Debian's chromium.
//
//   PGHOST=/tmp/sock PGPORT=5432 PGUSER=postgres node ui/test/screenshots.js
//
// The server must preload durable and the role may create databases;
// the SDK must be built (cd clients/typescript && npm run build).
import path from "node:path";
import { chromium } from "playwright-core";
import { testDsn, startUI, startWorker, stopProcess, connect, until, startOrder, orderSettled, UI_DIR } from "./fixture.js";

const DB = "ui_screenshots";
const DOCS = path.resolve(UI_DIR, "..", "docs");
const QUEUE = "orders";

const base = testDsn();
const admin = connect(base);
await admin.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
await admin.query(`CREATE DATABASE ${DB}`);
const dsn = base.replace(/\/[^/?]*(\?|$)/, `/${DB}$1`);
const db = connect(dsn);
const procs = [];
let browser;
try {
  await db.query("CREATE EXTENSION durable");
  procs.push(await startWorker(dsn, QUEUE));
  const ui = await startUI(dsn);
  procs.push(ui.proc);

  const customers = ["acme", "globex", "initech", "umbrella", "hooli", "stark"];
  for (let i = 0; i < customers.length; i++) await startOrder(db, `order-${1001 + i}`, QUEUE, customers[i]);
  await db.query("SELECT durable.wf_start('ui_loop', '{}', 'nightly-rollup', $1)", [QUEUE]);
  for (let i = 0; i < customers.length; i++) await orderSettled(db, `order-${1001 + i}`);
  await db.query(`SELECT durable.wf_signal('order-1001', 'approve', '{"by": "ada"}')`);
  await db.query(`SELECT durable.wf_signal('order-1002', 'approve', '{"by": "grace"}')`);
  await db.query("SELECT durable.wf_terminate('order-1003', 'customer asked to stop')");
  await db.query(`SELECT durable.wf_signal('order-1005', 'note', '{"text": "gift wrap, please"}')`);
  await until("the approved orders to complete", async () =>
    (await db.query("SELECT count(*) AS n FROM durable.workflows WHERE workflow_id IN ('order-1001', 'order-1002') AND status = 'completed'")).rows[0].n === "2");

  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ["--no-sandbox"] });
  const page = await browser.newPage({ viewport: { width: 1320, height: 640 } });
  await page.goto(`${ui.url}/workflows`);
  await page.locator("table.list tbody tr", { hasText: "nightly-rollup" }).first().waitFor();
  await page.screenshot({ path: path.join(DOCS, "ui-workflows.png") });

  await page.setViewportSize({ width: 1320, height: 900 });
  await page.goto(`${ui.url}/workflow?id=order-1005`);
  await page.locator("#signals tr", { hasText: "gift wrap" }).waitFor();
  await page.locator("#history details.json summary").nth(1).click();   // one value opened: folded JSON, pretty
  await page.screenshot({ path: path.join(DOCS, "ui-run.png"), fullPage: true });
  console.log(`wrote ${path.join(DOCS, "ui-workflows.png")} and ${path.join(DOCS, "ui-run.png")}`);
} finally {
  if (browser) await browser.close();
  for (const p of procs.reverse()) await stopProcess(p);
  await db.end();
  await admin.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await admin.end();
}
