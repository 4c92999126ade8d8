// One workflow: the run asked for (the latest by default) with its
// timeline, journal, pending activities, timers, buffered signals,
// children, parent and the chain of runs of its workflow id; and the
// actions on the workflow (they act on its latest run, as the SQL calls do).
import { h, fill, href, statusBadge, badge, time, json, table, section, errorBox, fmtDuration } from "../dom.js";
import { act } from "../api.js";
import { confirmAction } from "../dialog.js";
import { attributes } from "./workflows.js";

export function mount(main, ctx) {
  const { ns, params, flash, refresh } = ctx;
  const id = params.get("id") || "";
  const runId = params.get("run");
  const nsParam = ns === "default" ? null : ns;
  let latest = null;   // the latest run's row, from the last answer

  const title = h("h1", {}, "Workflow ", h("code", { id: "workflow-id" }, id));
  const actions = h("div", { class: "actions", id: "actions" });
  const body = h("div", { id: "run" });
  fill(main, h("p", { class: "crumbs" }, h("a", { href: href("/workflows", { ns: nsParam }) }, "Workflows"), " / ", id),
    title, actions, body);

  const done = (text) => (out) => {
    if (out) {
      flash(text(out.result, out.values));
      refresh();
    }
  };
  const reasonField = { name: "reason", label: "Reason (optional)", type: "textarea" };
  const button = (label, cls, onclick) => h("button", { type: "button", class: cls, onclick }, label);
  actions.append(
    button("Signal", "secondary", () => confirmAction({
      title: "Send a signal",
      text: `Send a signal to the running run of ${id}. It is buffered until the workflow waits for it.`,
      fields: [{ name: "signal", label: "Signal name", required: true },
               { name: "payload", label: "Payload (JSON)", type: "json", value: "{}",
                 help: "Any JSON value; empty sends no payload." },
               { name: "signal_id", label: "Signal id (optional, makes it idempotent)" }],
      confirm: "Send signal",
      submit: (v) => act(ns, "signal", { workflow_id: id, ...v }),
    }).then(done((r, v) => `Signal ${v.signal} sent.`))),
    button("Cancel", "secondary", () => confirmAction({
      title: "Request cancellation",
      text: `Ask ${id} to cancel: its next workflow task sees the request; timers and signal waits resolve as cancelled.`,
      fields: [reasonField], confirm: "Request cancel",
      submit: (v) => act(ns, "cancel", { workflow_id: id, ...v }),
    }).then(done(() => "Cancellation requested."))),
    button("Terminate", "danger", () => confirmAction({
      title: "Terminate",
      text: `Close ${id} at once as terminated. Its outstanding tasks are withdrawn; the workflow code gets no say.`,
      fields: [reasonField], confirm: "Terminate", danger: true,
      submit: (v) => act(ns, "terminate", { workflow_id: id, ...v }),
    }).then(done(() => "Terminated."))),
    button("Reset", "secondary", () => confirmAction({
      title: "Reset",
      text: `Replace the latest run of ${id} (terminating it if it runs) by a new run that keeps the journal entries before the given seq and redoes the rest.`,
      fields: [{ name: "to_seq", label: "Redo from journal seq", type: "number", min: 1, value: "1", required: true },
               reasonField],
      confirm: "Reset", danger: true,
      submit: (v) => act(ns, "reset", { workflow_id: id, ...v }),
    }).then((out) => {
      if (!out) return;
      // show the new run: it is the latest now
      location.href = href("/workflow", { ns: nsParam, id, run: out.result });
    })),
    button("Pause", "secondary", () => confirmAction({
      title: "Pause",
      text: `Hold ${id}: none of its tasks is handed out until it is unpaused (a task already leased runs to its end).`,
      fields: [reasonField], confirm: "Pause",
      submit: (v) => act(ns, "pause", { workflow_id: id, ...v }),
    }).then(done((r) => (r ? "Paused." : "It was paused already.")))),
    button("Unpause", "secondary", () => confirmAction({
      title: "Unpause",
      text: `Let ${id} go on: its held tasks are ready again.`,
      fields: [reasonField], confirm: "Unpause",
      submit: (v) => act(ns, "unpause", { workflow_id: id, ...v }),
    }).then(done((r) => (r ? "Unpaused." : "It was not paused.")))),
  );

  return {
    url: () => href("/api/run", { ns, id, run: runId }),
    render(d) {
      latest = d.runs[d.runs.length - 1];
      const r = d.run;
      document.title = `${id} · durable`;
      fill(title, "Workflow ", h("code", { id: "workflow-id" }, id), " ",
        h("span", { id: "run-status" }, statusBadge(r.status)),
        r.paused ? badge("Paused", "paused") : null,
        r.cancel_requested ? badge("Cancel requested", "warn") : null);
      const journal = d.journal.rows || [];
      fill(body,
        r.run_id !== d.latest_run_id
          ? h("p", { class: "note", id: "older-run" }, `This is run #${r.run_number}, not the latest (#${latest.run_number}); the actions act on the latest run. `,
              h("a", { href: href("/workflow", { ns: nsParam, id }) }, "Show the latest run"))
          : null,
        summary(d, nsParam),
        runsChain(d, id, nsParam),
        section("pending", "Pending activities", d.journal, () => pendingActivities(journal)),
        section("timers", "Timers", d.journal, () => timers(journal)),
        section("signals", "Buffered signals", d.signals, () => table([
          { label: "Signal", cell: (s) => s.name },
          { label: "Payload", cell: (s) => json(s.payload, `sig-${s.signal_no}`) },
          { label: "Signal id", cell: (s) => s.signal_id || "" },
          { label: "Received", cell: (s) => time(s.created_at, { rel: true }) },
        ], d.signals.rows, { empty: "No signal waits to be taken." })),
        section("children", "Children", d.children, () => table([
          { label: "Workflow ID", cell: (c) => h("a", { href: href("/workflow", { ns: nsParam, id: c.workflow_id, run: c.run_id }) }, c.workflow_id) },
          { label: "Type", cell: (c) => c.workflow_type },
          { label: "Status", cell: (c) => statusBadge(c.status) },
          { label: "Started", cell: (c) => time(c.created_at) },
          { label: "Closed", cell: (c) => time(c.closed_at) },
        ], d.children.rows, { empty: "No child workflows." })),
        d.published.error || (d.published.rows && d.published.rows.length)
          ? section("published", "Published state", d.published, () => table([
            { label: "Name", cell: (p) => p.name },
            { label: "Value", cell: (p) => json(p.value, `pub-${p.name}`) },
            { label: "Updated", cell: (p) => time(p.updated_at) },
          ], d.published.rows))
          : null,
        section("journal", "Journal", d.journal, () => [
          table([
            { label: "Seq", cls: "num", cell: (s) => s.seq },
            { label: "Kind", cell: (s) => s.kind },
            { label: "Name", cell: (s) => s.name },
            { label: "Status", cell: (s) => statusBadge(s.status) },
            { label: "Attempt", cls: "num", cell: (s) => (s.kind === "activity" ? s.attempt : "") },
            { label: "Input", cell: (s) => (s.input === null ? "" : json(s.input, `j-in-${r.run_id}-${s.seq}`)) },
            { label: "Result", cell: (s) => (s.result === null ? "" : json(s.result, `j-res-${r.run_id}-${s.seq}`)) },
            { label: "Error", cell: (s) => (s.error === null ? "" : json(s.error, `j-err-${r.run_id}-${s.seq}`)) },
            { label: "Scheduled", cell: (s) => time(s.scheduled_at) },
            { label: "Resolved", cell: (s) => time(s.resolved_at) },
          ], journal, { empty: "No journal entries yet.", cls: "journal" }),
          d.journal.truncated ? h("p", { class: "muted" }, "Only the first 2000 entries are shown.") : null,
        ]),
        section("history", "History", d.history, () => timeline(d.history, r)),
      );
    },
    renderError(err) {
      fill(body, errorBox(err, "This workflow cannot be read:"));
    },
  };
}

function field(label, value) {
  return [h("dt", {}, label), h("dd", {}, value)];
}

function summary(d, nsParam) {
  const r = d.run;
  const parent = d.parent.rows && d.parent.rows[0];
  return h("section", { id: "summary", class: "panel" },
    h("dl", { class: "summary" },
      field("Status", statusBadge(r.status)),
      field("Type", r.workflow_type),
      field("Queue", r.queue),
      field("Run", `#${r.run_number} (run id ${r.run_id})`),
      field("Attempt", String(r.attempt)),
      field("Priority", String(r.priority)),
      field("Started", time(r.created_at, { rel: true })),
      field("Closed", r.closed_at ? [time(r.closed_at), ` after ${fmtDuration(new Date(r.closed_at) - new Date(r.created_at))}`] : "running"),
      r.parent_run_id !== null
        ? field("Parent", d.parent.error ? errorBox(d.parent.error)
          : parent ? h("a", { id: "parent-link", href: href("/workflow", { ns: parent.namespace === "default" ? null : parent.namespace, id: parent.workflow_id, run: parent.run_id }) },
            parent.workflow_id, ` (run ${parent.run_id})`) : `run ${r.parent_run_id} (not readable)`)
        : null,
      r.search_attributes ? field("Search attributes", attributes(r.search_attributes)) : null,
      r.memo !== null && r.memo !== undefined ? field("Memo", json(r.memo, `memo-${r.run_id}`)) : null,
      field("Input", json(r.input, `in-${r.run_id}`)),
      r.output !== null ? field("Output", json(r.output, `out-${r.run_id}`)) : null,
      r.error !== null ? field("Error", json(r.error, `err-${r.run_id}`)) : null));
}

/** The runs of the workflow id in order: continue-as-new, retries and resets each made the next. */
function runsChain(d, id, nsParam) {
  return h("section", { id: "runs", class: "panel" }, h("h2", {}, "Runs"),
    h("ol", { class: "chain" }, d.runs.map((x) => h("li", { class: x.run_id === d.run.run_id ? "current" : null },
      x.run_id === d.run.run_id
        ? h("strong", {}, `#${x.run_number}`)
        : h("a", { href: href("/workflow", { ns: nsParam, id, run: x.run_id }) }, `#${x.run_number}`),
      " ", statusBadge(x.status), " ", h("span", { class: "muted" }, `run ${x.run_id}, `), time(x.created_at)))));
}

function pendingActivities(journal) {
  const rows = journal.filter((s) => s.kind === "activity" && s.status === "pending");
  return table([
    { label: "Seq", cls: "num", cell: (s) => s.seq },
    { label: "Activity", cell: (s) => s.name },
    { label: "Queue", cell: (s) => s.queue },
    { label: "State", cell: (s) => badge(s.activity_state || "", `act-${s.activity_state}`) },
    { label: "Attempt", cls: "num", cell: (s) => s.attempt },
    { label: "Next retry", cell: (s) => (s.next_attempt_at ? time(s.next_attempt_at, { rel: true }) : "") },
    { label: "Last error", cell: (s) => (s.last_error ? json(s.last_error, `le-${s.run_id}-${s.seq}`) : "") },
    { label: "Deadline", cell: (s) => (s.due_at ? time(s.due_at, { rel: true }) : "") },
  ], rows, { empty: "No activity pending." });
}

function timers(journal) {
  const rows = journal.filter((s) => s.kind === "sleep");
  return table([
    { label: "Seq", cls: "num", cell: (s) => s.seq },
    { label: "Status", cell: (s) => statusBadge(s.status) },
    { label: "Fires", cell: (s) => (s.due_at ? time(s.due_at, { rel: s.status === "pending" }) : "") },
    { label: "Set", cell: (s) => time(s.scheduled_at) },
    { label: "Resolved", cell: (s) => time(s.resolved_at) },
  ], rows, { empty: "No timers." });
}

const EVENT_CLASS = (t) => (/failed|timed_out|terminat/.test(t) ? "ev-bad"
  : /cancel/.test(t) ? "ev-warn" : /completed|started|recorded/.test(t) ? "ev-good" : "");

function timeline(history, r) {
  const rows = history.rows || [];
  const t0 = new Date(r.created_at).getTime();
  return [
    h("ol", { class: "timeline" }, rows.map((e, i) => h("li", { class: `event ${EVENT_CLASS(e.event_type)}` },
      h("span", { class: "ev-time", title: e.event_time }, `+${fmtDuration(new Date(e.event_time).getTime() - t0)}`),
      h("span", { class: "ev-type" }, e.event_type),
      h("span", { class: "ev-seq" }, e.seq !== null ? `seq ${e.seq}` : ""),
      e.details !== null && !(typeof e.details === "object" && Object.keys(e.details).length === 0)
        ? h("span", { class: "ev-details" }, json(e.details, `ev-${r.run_id}-${i}-${e.event_type}`)) : h("span")))),
    history.truncated ? h("p", { class: "muted" }, "Only the first 2000 events are shown.") : null,
  ];
}

