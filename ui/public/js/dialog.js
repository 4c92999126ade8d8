// The confirm step of every action: a modal dialog that says what will
// happen, takes the action's arguments, and on failure shows the engine's
// error (message, detail, hint, SQLSTATE) and stays open.
import { h, fill, errorBox } from "./dom.js";
import { ApiError } from "./api.js";

/** Validation of a JSON field: "" (nothing: SQL NULL) or the parse error. */
export function jsonProblem(text) {
  if (text.trim() === "") return null;
  try {
    JSON.parse(text);
    return null;
  } catch (e) {
    return e.message;
  }
}

function field(f) {
  const id = `field-${f.name}`;
  let input;
  if (f.type === "json" || f.type === "textarea") {
    input = h("textarea", { id, name: f.name, rows: f.type === "json" ? 8 : 3, spellcheck: "false",
                            placeholder: f.placeholder || null, class: f.type === "json" ? "code" : null });
  } else {
    input = h("input", { id, name: f.name, type: f.type || "text", placeholder: f.placeholder || null,
                         required: f.required || null, min: f.min ?? null, autocomplete: "off" });
  }
  if (f.value !== undefined) input.value = f.value;
  const note = f.type === "json" ? h("div", { class: "json-status", id: `${id}-status`, "aria-live": "polite" }) : null;
  return { input, el: h("div", { class: "field" }, h("label", { for: id }, f.label), input,
                        f.help ? h("div", { class: "help" }, f.help) : null, note), note, f };
}

/**
 * confirmAction({title, text, fields, confirm, danger, submit}): show the
 * dialog; submit(values) runs the action.  Resolves with its result, or
 * null when the operator cancels.
 */
export function confirmAction({ title, text, fields = [], confirm = "Confirm", danger = false, submit }) {
  return new Promise((resolve) => {
    const parts = fields.map(field);
    const errors = h("div", { class: "dialog-errors" });
    const ok = h("button", { type: "submit", class: danger ? "danger" : "primary", value: "confirm" }, confirm);
    const cancel = h("button", { type: "button", class: "secondary" }, "Cancel");
    const form = h("form", { method: "dialog" },
      h("h2", {}, title), h("p", { class: "confirm-text" }, text),
      parts.map((p) => p.el), errors, h("div", { class: "buttons" }, cancel, ok));
    const dlg = h("dialog", { class: "confirm", "aria-label": title }, form);

    // a JSON field is checked as it is typed; invalid JSON cannot be sent
    const check = () => {
      let bad = false;
      for (const p of parts) {
        if (p.f.type !== "json") continue;
        const problem = jsonProblem(p.input.value);
        p.note.textContent = problem ? `Invalid JSON: ${problem}` : (p.input.value.trim() ? "Valid JSON" : "No payload (NULL)");
        p.note.className = `json-status ${problem ? "bad" : "good"}`;
        p.input.setAttribute("aria-invalid", problem ? "true" : "false");
        bad ||= Boolean(problem);
      }
      ok.disabled = bad;
    };
    for (const p of parts) if (p.f.type === "json") p.input.addEventListener("input", check);
    check();

    const finish = (v) => {
      dlg.close();
      dlg.remove();
      resolve(v);
    };
    cancel.addEventListener("click", () => finish(null));
    dlg.addEventListener("cancel", (ev) => {
      ev.preventDefault();
      finish(null);
    });
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      check();
      if (ok.disabled) return;
      const values = Object.fromEntries(parts.map((p) => [p.f.name, p.input.value]));
      ok.disabled = true;
      cancel.disabled = true;
      fill(errors, h("p", { class: "muted" }, "Working…"));
      try {
        const result = await submit(values);
        finish({ result, values });
      } catch (e) {
        fill(errors, errorBox(e instanceof ApiError ? e.err : { message: String(e.message || e) },
                                        "The action failed:"));
        ok.disabled = false;
        cancel.disabled = false;
        check();
      }
    });
    document.body.append(dlg);
    dlg.showModal();
    (parts[0] ? parts[0].input : ok).focus();
  });
}
