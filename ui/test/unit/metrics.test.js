// The /metrics formatter on fixed rows of durable.metrics()'s shape.
import { test } from "node:test";
import assert from "node:assert/strict";
import { formatMetrics, formatValue, escapeLabelValue, escapeHelp } from "../../lib/metrics.js";

test("counter, gauge and histogram families: HELP and TYPE once, then the samples", () => {
  const rows = [
    { family: "durable_workflows_started_total", kind: "counter", help: "Runs started.", sample: "durable_workflows_started_total", labels: { namespace: "default" }, value: 42 },
    { family: "durable_queue_ready", kind: "gauge", help: "Ready tasks.", sample: "durable_queue_ready", labels: { namespace: "default", queue: "mail" }, value: 3 },
    { family: "durable_workflows_started_total", kind: "counter", help: "Runs started.", sample: "durable_workflows_started_total", labels: { namespace: "other" }, value: 1 },
    { family: "durable_task_wait_seconds", kind: "histogram", help: "Wait before a claim.", sample: "durable_task_wait_seconds_bucket", labels: { le: "0.1", queue: "mail" }, value: 1 },
    { family: "durable_task_wait_seconds", kind: "histogram", help: "Wait before a claim.", sample: "durable_task_wait_seconds_bucket", labels: { queue: "mail", le: "+Inf" }, value: 4 },
    { family: "durable_task_wait_seconds", kind: "histogram", help: "Wait before a claim.", sample: "durable_task_wait_seconds_sum", labels: { queue: "mail" }, value: 2.5 },
    { family: "durable_task_wait_seconds", kind: "histogram", help: "Wait before a claim.", sample: "durable_task_wait_seconds_count", labels: { queue: "mail" }, value: 4 },
    { family: "durable_up", kind: "gauge", help: "", sample: "durable_up", labels: {}, value: 1 },
  ];
  assert.equal(formatMetrics(rows), [
    "# HELP durable_workflows_started_total Runs started.",
    "# TYPE durable_workflows_started_total counter",
    'durable_workflows_started_total{namespace="default"} 42',
    'durable_workflows_started_total{namespace="other"} 1',
    "# HELP durable_queue_ready Ready tasks.",
    "# TYPE durable_queue_ready gauge",
    'durable_queue_ready{namespace="default",queue="mail"} 3',
    "# HELP durable_task_wait_seconds Wait before a claim.",
    "# TYPE durable_task_wait_seconds histogram",
    'durable_task_wait_seconds_bucket{queue="mail",le="0.1"} 1',
    'durable_task_wait_seconds_bucket{queue="mail",le="+Inf"} 4',
    'durable_task_wait_seconds_sum{queue="mail"} 2.5',
    'durable_task_wait_seconds_count{queue="mail"} 4',
    "# TYPE durable_up gauge",
    "durable_up 1",
    "",
  ].join("\n"));
});

test("label values escape backslash, double quote and line feed", () => {
  assert.equal(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
  const out = formatMetrics([{ family: "m", kind: "gauge", help: "h", sample: "m", labels: { queue: 'q"\\\n' }, value: 1 }]);
  assert.match(out, /^m\{queue="q\\"\\\\\\n"\} 1$/m);
});

test("HELP escapes backslash and line feed but not quotes", () => {
  assert.equal(escapeHelp('say "hi"\\\nnow'), 'say "hi"\\\\\\nnow');
});

test("+Inf, -Inf and NaN print as Prometheus does; numbers as numbers", () => {
  assert.equal(formatValue(Infinity), "+Inf");
  assert.equal(formatValue(-Infinity), "-Inf");
  assert.equal(formatValue(NaN), "NaN");
  assert.equal(formatValue(0), "0");
  assert.equal(formatValue(-2.5), "-2.5");
  assert.equal(formatValue(1e21), "1e+21");
  assert.equal(formatValue("Infinity"), "+Inf");   // a driver that hands float8 over as text
  const out = formatMetrics([{ family: "g", kind: "gauge", help: "x", sample: "g", labels: null, value: -Infinity }]);
  assert.equal(out, "# HELP g x\n# TYPE g gauge\ng -Inf\n");
});

test("an unknown kind is untyped, a row without a value has no sample, bad names are refused", () => {
  assert.equal(formatMetrics([{ family: "x", kind: "weird", help: null, sample: "x", labels: {}, value: null }]), "# TYPE x untyped\n");
  assert.throws(() => formatMetrics([{ family: "bad name", kind: "gauge", help: "", sample: "bad name", labels: {}, value: 1 }]), /invalid metric name/);
  assert.throws(() => formatMetrics([{ family: "m", kind: "gauge", help: "", sample: "m", labels: { "a-b": "1" }, value: 1 }]), /invalid label name/);
  assert.equal(formatMetrics([]), "");
});
