import { test } from "node:test";
import assert from "node:assert/strict";

import { axisSpecs, brushBetween, fractionAt, layout, selectedIds } from "../../web/static/js/pure/parallel_coords.js";
import { categoryScale, linearTicks, logTicks, rampColor, scaleFor } from "../../web/static/js/pure/plot_scales.js";

test("numbers make a linear axis over their range, with round ticks", () => {
  const scale = scaleFor([2, 4, null, 6]);
  assert.equal(scale.kind, "linear");
  assert.equal(scale.place(2), 0);
  assert.equal(scale.place(4), 0.5);
  assert.equal(scale.place(null), null);
  assert.deepEqual(linearTicks(0, 1, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]);
});

test("a log distribution or three decades of positive numbers make a log axis", () => {
  const byDistribution = scaleFor([0.001, 0.01], { distribution: "log_uniform_values" });
  assert.equal(byDistribution.kind, "log");
  assert.ok(Math.abs(/** @type {number} */ (byDistribution.place(0.00316)) - 0.5) < 0.01);
  assert.equal(scaleFor([1e-5, 1e-1]).kind, "log");
  assert.equal(scaleFor([1, 10]).kind, "linear");
  assert.equal(scaleFor([-1, 1e4]).kind, "linear");
  assert.deepEqual(logTicks(1e-5, 0.1), [1e-5, 1e-4, 1e-3, 1e-2, 1e-1]);
});

test("anything else is categorical: evenly spaced points, the spec's order first", () => {
  const scale = scaleFor(["dice", "ce"], { order: ["ce", "dice", "ce+dice"] });
  assert.equal(scale.kind, "category");
  assert.deepEqual(scale.ticks.map((tick) => tick.label), ["ce", "dice", "ce+dice"]);
  assert.equal(scale.place("dice"), 0.5);
  assert.equal(scale.place("focal"), null);
  assert.equal(categoryScale([true]).place(true), 0.5);
  assert.equal(categoryScale([[1, 2]]).ticks[0].label, "[1,2]");
});

test("the axes are the swept keys (constants left out), then the metric", () => {
  const specs = axisSpecs({ learning_rate: { distribution: "log_uniform_values", min: 1e-4, max: 1e-1 },
    loss: { value: "ce" }, batch_size: { values: [4, 8] } }, "val/iou");
  assert.deepEqual(specs.map((spec) => spec.key), ["learning_rate", "batch_size", "val/iou"]);
  assert.deepEqual(specs[1].order, [4, 8]);
  assert.equal(specs[2].metric, true);
});

test("brushes on several axes AND; a run without a value on a brushed axis is out", () => {
  const runs = [
    { id: 1, params: { lr: 0.001, bs: 4 }, value: 0.5 },
    { id: 2, params: { lr: 0.01, bs: 8 }, value: 0.7 },
    { id: 3, params: { lr: 0.1, bs: 4 }, value: null },
  ];
  const plotted = layout(runs, axisSpecs({ lr: { distribution: "log_uniform_values" }, bs: { values: [4, 8] } }, "score"));
  assert.deepEqual(plotted.places[1], [0.5, 1, 1]);
  assert.deepEqual([...selectedIds(runs, plotted, new Map())], [1, 2, 3]);
  assert.deepEqual([...selectedIds(runs, plotted, new Map([["bs", brushBetween(0.2, -1)]]))], [1, 3]);
  const both = new Map([["bs", brushBetween(0, 0.2)], ["lr", brushBetween(0.4, 1)]]);
  assert.deepEqual([...selectedIds(runs, plotted, both)], [3]);
  assert.deepEqual([...selectedIds(runs, plotted, new Map([["score", [0, 1]]]))], [1, 2]);
  assert.deepEqual([...selectedIds(runs, plotted, new Map([["gone", [0, 0.1]]]))], [1, 2, 3]);
});

test("a pixel row's fraction along a vertical axis: 1 at the top, clamped", () => {
  assert.equal(fractionAt(10, 10, 100), 1);
  assert.equal(fractionAt(60, 10, 100), 0.5);
  assert.equal(fractionAt(500, 10, 100), 0);
});

test("the score ramp runs from dark purple to yellow; no score is grey", () => {
  assert.equal(rampColor(0), "#440154");
  assert.equal(rampColor(1), "#fde725");
  assert.equal(rampColor(2), "#fde725");
  assert.equal(rampColor(null), "#9ca3af");
});

test("a single value sits mid-axis with a short label", () => {
  const scale = scaleFor([0.31109562]);
  assert.equal(scale.place(0.31109562), 0.5);
  assert.deepEqual(scale.ticks, [{ at: 0.5, label: "0.3111" }]);
});
