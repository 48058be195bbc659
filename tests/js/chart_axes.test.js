// Where chart ticks may fall, their labels, and the steps a zoomed chart asks for.
import { test } from "node:test";
import assert from "node:assert/strict";

import { STEP_INCREMENTS, TIME_INCREMENTS, tickLabels, zoomSteps } from "../../web/static/js/pure/chart_axes.js";

test("step ticks are whole numbers, ascending, from 1", () => {
  assert.equal(STEP_INCREMENTS[0], 1);
  assert.ok(STEP_INCREMENTS.every((step) => Number.isInteger(step)));
  assert.ok(STEP_INCREMENTS.every((step, i) => i === 0 || step > STEP_INCREMENTS[i - 1]));
  assert.deepEqual(STEP_INCREMENTS.slice(0, 6), [1, 2, 5, 10, 20, 50]);
});

test("time ticks fall on whole seconds, minutes, hours and days", () => {
  for (const unit of [60, 3600, 86400]) assert.ok(TIME_INCREMENTS.includes(unit), String(unit));
  assert.ok(!TIME_INCREMENTS.includes(7));
});

test("tick labels use as few digits as tell them apart", () => {
  assert.deepEqual(tickLabels([0, 0.5, 1, 1.5]), ["0.0", "0.5", "1.0", "1.5"]);
  assert.deepEqual(tickLabels([0.25, 0.5, 0.75]), ["0.25", "0.50", "0.75"]);
  assert.deepEqual(tickLabels([10, 20, 30]), ["10", "20", "30"]);
});

test("very small and large ticks are powers of ten; zero stays 0", () => {
  assert.deepEqual(tickLabels([0, 1e-4, 2e-4]), ["0", "1e-4", "2e-4"]);
  assert.deepEqual(tickLabels([1e-5, 1e-4, 1e-3]), ["1e-5", "1e-4", "1e-3"]);
  assert.deepEqual(tickLabels([2e5, 4e5]), ["2e+5", "4e+5"]);
  assert.deepEqual(tickLabels([1.5e-4, 2.5e-4]), ["1.5e-4", "2.5e-4"]);
});

test("ticks that are not finite get no label", () => {
  assert.deepEqual(tickLabels([NaN, 1, 2]), ["", "1", "2"]);
  assert.deepEqual(tickLabels([Infinity]), [""]);
});

test("a zoomed chart asks for every whole step it shows, none below 0", () => {
  assert.deepEqual(zoomSteps({ min: 2000.4, max: 2999.2 }), { min_step: "2000", max_step: "3000" });
  assert.deepEqual(zoomSteps({ min: -12.5, max: 40 }), { min_step: "0", max_step: "40" });
  assert.deepEqual(zoomSteps({ min: -12.5, max: -3 }), { min_step: "0", max_step: "0" }, "never an empty range");
});
