import { test } from "node:test";
import assert from "node:assert/strict";

import { expandRange, gridSize, neighbourhood, parameterSpec, parseValues, settingAround, specSettings, sweepItemType } from "../../web/static/js/pure/sweep_spec.js";
import { bestSoFarColumns, concernsSweep, importanceBars, isLive, progress, topRuns } from "../../web/static/js/pure/sweep_results.js";

test("values: a comma list of the field's type, each once", () => {
  assert.deepEqual(parseValues("4, 8", "integer"), { value: [4, 8] });
  assert.deepEqual(parseValues("true,false", "boolean"), { value: [true, false] });
  assert.deepEqual(parseValues("ce, dice", "string"), { value: ["ce", "dice"] });
  assert.match(/** @type {any} */ (parseValues("4, 4", "integer")).problem, /each value once/);
  assert.match(/** @type {any} */ (parseValues("4.5", "integer")).problem, /whole number/);
  assert.match(/** @type {any} */ (parseValues("yes", "boolean")).problem, /neither true nor false/);
  assert.match(/** @type {any} */ (parseValues("", "number")).problem, /type the values/);
});

test("a range with steps becomes values (geometric when log); without, a distribution", () => {
  assert.deepEqual(expandRange(0.001, 0.1, 3, true, false), [0.001, 0.01, 0.1]);
  assert.deepEqual(expandRange(0, 1, 5, false, false), [0, 0.25, 0.5, 0.75, 1]);
  assert.deepEqual(expandRange(1, 3, 5, false, true), [1, 2, 3]);
  const range = { mode: /** @type {const} */ ("range"), min: "1e-4", max: "1e-2", log: true, steps: "" };
  assert.deepEqual(parameterSpec(range, "number"), { value: { distribution: "log_uniform_values", min: 1e-4, max: 1e-2 } });
  assert.deepEqual(parameterSpec({ ...range, log: false, min: "2", max: "6" }, "integer"), { value: { distribution: "int_uniform", min: 2, max: 6 } });
  assert.deepEqual(parameterSpec({ ...range, log: false }, "number"), { value: { distribution: "uniform", min: 1e-4, max: 1e-2 } });
  assert.deepEqual(parameterSpec({ ...range, steps: "3" }, "number"), { value: { values: [1e-4, 1e-3, 1e-2] } });
  assert.match(/** @type {any} */ (parameterSpec({ ...range, min: "1", max: "0.5" }, "number")).problem, /min must be below max/);
  assert.match(/** @type {any} */ (parameterSpec({ ...range, min: "0" }, "number")).problem, /log range needs min above 0/);
  assert.match(/** @type {any} */ (parameterSpec({ ...range, steps: "1" }, "number")).problem, /steps: from 2/);
  assert.match(/** @type {any} */ (parameterSpec({ ...range, min: "", }, "number")).problem, /^min:/);
});

test("a grid's size is the product of its keys' counts; a continuous key cannot be a grid", () => {
  assert.deepEqual(gridSize({ a: { values: [1, 2] }, b: { values: ["x", "y", "z"] } }), { count: 6 });
  assert.deepEqual(gridSize({ a: { distribution: "int_uniform", min: 2, max: 5 } }), { count: 4 });
  assert.deepEqual(gridSize({}), { count: 1 });
  const refused = /** @type {any} */ (gridSize({ a: { values: [1] }, lr: { distribution: "uniform", min: 0, max: 1 } }));
  assert.equal(refused.key, "lr");
  assert.match(refused.problem, /give lr steps, or search with random or bayes/);
});

test("sweeping around a run: a log range around a float, else its value", () => {
  assert.deepEqual(settingAround(0.001), { mode: "range", min: "0.0001", max: "0.01", log: true, steps: "" });
  assert.deepEqual(settingAround(8), { mode: "values", text: "8" });
});

test("the neighbourhood of a run: several numbers it set, each around its value", () => {
  const around = neighbourhood({ learning_rate: 0.002, batch_size: 8, weight_decay: 1e-4, momentum: 0.9, optimizer: "sgd", epochs: 20, loss: "ce" });
  assert.deepEqual(around.learning_rate, { mode: "range", min: "0.0002", max: "0.02", log: true, steps: "" });
  assert.deepEqual(around.batch_size, { mode: "values", text: "4, 8, 16" });
  assert.deepEqual(around.weight_decay, { mode: "values", text: "0.00001, 0.0001, 0.001" });
  assert.deepEqual(around.momentum, { mode: "values", text: "0.85, 0.9, 0.95" });
  assert.deepEqual(Object.keys(around).sort(), ["batch_size", "learning_rate", "momentum", "weight_decay"]);
  assert.deepEqual(neighbourhood({ batch_size: 1, weight_decay: 0, momentum: 0, optimizer: "sgd" }), {
    batch_size: { mode: "values", text: "1, 2" },
    weight_decay: { mode: "values", text: "0, 0.00001, 0.0001" },
  });
  assert.deepEqual(neighbourhood({ learning_rate: "1e-3", batch_size: 2.5 }), {});
  assert.equal(neighbourhood({ momentum: 0.9, optimizer: "adamw" }).momentum, undefined, "adam does not use momentum");
  // Each prefilled list reads as the values of its field, so a grid over them counts right.
  const specs = Object.fromEntries(["batch_size", "weight_decay", "momentum"].map((key) => [key,
    /** @type {any} */ (parameterSpec(around[key], key === "batch_size" ? "integer" : "number")).value]));
  assert.deepEqual(specs.batch_size, { values: [4, 8, 16] });
  assert.deepEqual(gridSize(specs), { count: 27 });
});

test("the sweep settings as spec keys: metric with its target, early termination with its options", () => {
  assert.deepEqual(specSettings({ method: "bayes", metric: "val/iou", goal: "maximize", target: 0.9, max_runs: 30, parallel: 2,
    sweep_seed: 7, early_terminate: "hyperband", et_min_iter: 2, et_eta: 3 }), {
    method: "bayes", max_runs: 30, parallel: 2, seed: 7,
    metric: { name: "val/iou", goal: "maximize", target: 0.9 },
    early_terminate: { type: "hyperband", min_iter: 2, eta: 3 },
  });
  assert.deepEqual(specSettings({ method: "grid", metric: "val/loss", goal: "minimize", early_terminate: "none", parallel: 1 }), {
    method: "grid", parallel: 1, metric: { name: "val/loss", goal: "minimize" },
  });
  assert.deepEqual(specSettings({ method: "random", metric: "val/iou", goal: "maximize", early_terminate: "median", et_n_startup_trials: 3 }).early_terminate,
    { type: "median", n_startup_trials: 3 });
});

test("progress parts are shares of max_runs; ended counts finished runs of every kind", () => {
  const { parts, ended, made } = progress({ done: 2, running: 1, queued: 1, pruned: 1, failed: 0, cancelled: 0 }, 10);
  assert.deepEqual(parts.map((part) => [part.part, part.share]), [["done", 0.2], ["pruned", 0.1], ["failed", 0], ["running", 0.1], ["queued", 0.1]]);
  assert.equal(ended, 3);
  assert.equal(made, 5);
});

test("best so far, top runs, importance bars and liveness", () => {
  const columns = bestSoFarColumns([{ trial_number: 2, value: 0.4, best: 0.6 }, { trial_number: 0, value: 0.6, best: 0.6 }]);
  assert.deepEqual(columns, { steps: [0, 2], values: [0.6, 0.4], best: [0.6, 0.6] });
  const runs = [{ id: 1, value: 0.3 }, { id: 2, value: null }, { id: 3, value: 0.9 }, { id: 4, value: 0.5 }];
  assert.deepEqual(topRuns(runs, "maximize", 2).map((run) => run.id), [3, 4]);
  assert.deepEqual(topRuns(runs, "minimize", 2).map((run) => run.id), [1, 4]);
  assert.deepEqual(importanceBars({ a: 0.2, b: 0.8 }), [{ key: "b", value: 0.8, share: 1 }, { key: "a", value: 0.2, share: 0.25 }]);
  assert.deepEqual(importanceBars(null), []);
  const counts = { done: 1, running: 0, queued: 0, pruned: 0, failed: 0 };
  assert.equal(isLive({ status: "finished", counts }), false);
  assert.equal(isLive({ status: "cancelled", counts: { ...counts, running: 1 } }), true);
});

test("numbers, texts, choices and booleans are swept from the form; lists are not", () => {
  assert.equal(sweepItemType({ type: "number" }), "number");
  assert.equal(sweepItemType({ anyOf: [{ type: "integer" }, { type: "null" }] }), "integer");
  assert.equal(sweepItemType({ enum: ["adam", "sgd"] }), "string");
  assert.equal(sweepItemType({ type: "boolean" }), "boolean");
  assert.equal(sweepItemType({ type: "array", items: { type: "integer" } }), null);
});

test("a sweep's page reads it again on its own sweep events and its runs' status and metrics", () => {
  const runs = new Set([4, 5]);
  assert.equal(concernsSweep({ kind: "sweep", sweep_id: 3, run_id: null }, 3, runs), true);
  assert.equal(concernsSweep({ kind: "sweep", sweep_id: 2, run_id: null }, 3, runs), false);
  assert.equal(concernsSweep({ kind: "status", run_id: 5 }, 3, runs), true);
  assert.equal(concernsSweep({ kind: "metrics", run_id: 4 }, 3, runs), true);
  assert.equal(concernsSweep({ kind: "metrics", run_id: 9 }, 3, runs), false);
  assert.equal(concernsSweep({ kind: "preview", run_id: 4 }, 3, runs), false);
  assert.equal(concernsSweep({ kind: "dataset", run_id: null }, 3, runs), false);
});
