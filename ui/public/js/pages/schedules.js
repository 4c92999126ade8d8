// Schedules (admin view schedule_list): spec, next fire times, the last
// run, overlap policy, pause; trigger, pause, unpause and backfill.
import { h, fill, href, badge, statusBadge, time, table, errorBox } from "../dom.js";
import { act } from "../api.js";
import { confirmAction } from "../dialog.js";

// datetime-local values are the browser's local time; the engine gets them with their offset
const local = (d) => new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
const toIso = (v) => (v ? new Date(v).toISOString() : "");
const quote = (s) => `'${s.replace(/'/g, "''")}'`;

export function mount(main, { ns, flash, refresh }) {
  const body = h("div", { id: "schedules" });
  fill(main, h("h1", {}, "Schedules"), body);

  const run = (s, op, opts) => confirmAction({
    fields: [], ...opts,
    submit: (v) => act(s.namespace, op, { name: s.name, ...(opts.args ? opts.args(v) : v) }),
  }).then((out) => {
    if (out) {
      flash(opts.flash(out.result));
      refresh();
    }
  });
  const trigger = (s) => run(s, "schedule_trigger", {
    title: `Trigger ${s.name}`, text: `Start ${s.workflow_type} now, as a fire of schedule ${s.name} (its overlap policy, ${s.overlap}, applies).`,
    confirm: "Trigger", flash: (r) => (r ? `Triggered: started ${r}.` : "Skipped by the overlap policy."),
  });
  const pause = (s) => run(s, "schedule_pause", {
    title: `Pause ${s.name}`, text: "Fires that fall due while it is paused are not caught up.",
    fields: [{ name: "note", label: "Note (optional)" }], confirm: "Pause", danger: true, flash: () => `Schedule ${s.name} paused.`,
  });
  const unpause = (s) => run(s, "schedule_unpause", {
    title: `Unpause ${s.name}`, text: "Resume from now.",
    fields: [{ name: "note", label: "Note (optional)" }], confirm: "Unpause", flash: () => `Schedule ${s.name} unpaused.`,
  });
  const backfill = (s) => {
    const now = new Date();
    return run(s, "schedule_backfill", {
      title: `Backfill ${s.name}`,
      text: "Start the runs of every fire time in [start, end) that has none yet (overlap allow_all).",
      fields: [{ name: "start", label: "Start (your local time)", type: "datetime-local", value: local(new Date(now - 3600_000)) },
               { name: "end", label: "End (your local time)", type: "datetime-local", value: local(now) }],
      confirm: "Backfill",
      args: (v) => ({ start: toIso(v.start), end: toIso(v.end) }),
      flash: (n) => `Backfill started ${n} run${n === 1 ? "" : "s"}.`,
    });
  };

  return {
    url: () => href("/api/schedules", { ns }),
    render(d) {
      fill(body, table([
        { label: "Schedule", cell: (s) => [h("div", { class: "sname" }, s.name), s.namespace !== "default" ? h("div", { class: "muted" }, s.namespace) : null] },
        { label: "Spec", cell: (s) => [h("code", {}, s.spec), s.timezone !== "UTC" ? h("div", { class: "muted" }, s.timezone) : null] },
        { label: "Starts", cell: (s) => [s.workflow_type, h("div", { class: "muted" }, `on ${s.queue}`)] },
        { label: "Overlap", cell: (s) => [s.overlap, h("div", { class: "muted" }, `catch-up ${s.catchup_window}`)] },
        { label: "State", cell: (s) => (s.paused ? [badge("Paused", "paused"), s.note ? h("div", { class: "muted note" }, s.note) : null] : badge("Active", "ok")) },
        { label: "Next fires", cell: (s) => (s.paused ? h("span", { class: "muted" }, "paused")
          : h("ul", { class: "times" }, s.next_times.map((t) => h("li", {}, time(t, { rel: true }))))) },
        { label: "Last runs", cell: (s) => lastRuns(s) },
        { label: "Fires", cls: "num", cell: (s) => [String(s.fires), s.skipped !== "0" ? h("div", { class: "muted" }, `${s.skipped} skipped`) : null] },
        { label: "", cell: (s) => h("div", { class: "row-actions" },
          h("button", { type: "button", class: "secondary", onclick: () => trigger(s) }, "Trigger"),
          s.paused ? h("button", { type: "button", class: "secondary", onclick: () => unpause(s) }, "Unpause")
            : h("button", { type: "button", class: "secondary", onclick: () => pause(s) }, "Pause"),
          h("button", { type: "button", class: "secondary", onclick: () => backfill(s) }, "Backfill")) },
      ], d.rows, { empty: "No schedules.", cls: "list" }));
    },
    renderError(err) {
      fill(body, errorBox(err, "Schedules cannot be read:"));
    },
  };
}

function lastRuns(s) {
  const nsParam = s.namespace === "default" ? null : s.namespace;
  const runs = s.last_runs || [];
  return [
    // a trigger starts a run without moving last_fire_at (the spec's fire times)
    s.last_fire_at ? h("div", {}, "fired ", time(s.last_fire_at, { rel: true }))
      : !s.last_workflow_id ? h("div", { class: "muted" }, "never fired") : null,
    runs.map((r) => h("div", {}, h("a", { href: href("/workflow", { ns: nsParam, id: r.workflow_id, run: r.run_id }) }, r.workflow_id),
                      " ", statusBadge(r.status))),
    s.fires !== "0" ? h("a", { class: "muted", href: href("/workflows", { ns: nsParam, q: `WorkflowId STARTS_WITH ${quote(`${s.name}-`)}` }) }, "all its runs") : null,
  ];
}
