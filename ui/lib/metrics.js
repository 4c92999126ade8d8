/**
 * Prometheus text exposition format, version 0.0.4, of the rows of
 * durable.metrics(): one row per sample, with its family's name, kind and
 * help text.  Pure functions, so the format is unit-tested with fixed rows
 * (test/unit/metrics.test.js) and /metrics only runs the query.
 */

export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

const KINDS = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);

/** HELP text: backslash and line feed are escaped (quotes are not, per the format). */
export function escapeHelp(s) {
  return String(s).replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/** A label value: backslash, double quote and line feed are escaped. */
export function escapeLabelValue(s) {
  return String(s).replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** A sample value as Prometheus prints it: +Inf, -Inf and NaN by name. */
export function formatValue(v) {
  const n = typeof v === "number" ? v : Number(v);
  if (Number.isNaN(n)) return "NaN";
  if (n === Infinity) return "+Inf";
  if (n === -Infinity) return "-Inf";
  return String(n);
}

function labelString(labels) {
  if (labels === null || labels === undefined) return "";
  // "le" last, as every Prometheus client prints it; the rest as given
  const keys = Object.keys(labels).filter((k) => labels[k] !== null && labels[k] !== undefined);
  keys.sort((a, b) => (a === "le") - (b === "le"));
  if (keys.length === 0) return "";
  const parts = keys.map((k) => {
    if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(k)) throw new Error(`invalid label name ${JSON.stringify(k)}`);
    const v = labels[k];
    return `${k}="${escapeLabelValue(typeof v === "string" ? v : JSON.stringify(v))}"`;
  });
  return `{${parts.join(",")}}`;
}

/**
 * rows: [{family, kind, help, sample, labels, value}] in the order the
 * function returned them.  Samples are grouped under their family (a
 * family's samples must be contiguous in the format), families in the order
 * they first appear, each with one # HELP and one # TYPE line.
 */
export function formatMetrics(rows) {
  const families = new Map();
  for (const r of rows) {
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(r.family)) throw new Error(`invalid metric name ${JSON.stringify(r.family)}`);
    let f = families.get(r.family);
    if (!f) {
      f = { kind: KINDS.has(r.kind) ? r.kind : "untyped", help: r.help, samples: [] };
      families.set(r.family, f);
    }
    if (r.value === null || r.value === undefined) continue;   // no value: no sample
    const sample = r.sample || r.family;
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(sample)) throw new Error(`invalid sample name ${JSON.stringify(sample)}`);
    f.samples.push(`${sample}${labelString(r.labels)} ${formatValue(r.value)}`);
  }
  let out = "";
  for (const [name, f] of families) {
    if (f.help !== null && f.help !== undefined && f.help !== "") out += `# HELP ${name} ${escapeHelp(f.help)}\n`;
    out += `# TYPE ${name} ${f.kind}\n`;
    for (const s of f.samples) out += s + "\n";
  }
  return out;
}
