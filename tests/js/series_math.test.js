// Series arithmetic behind the charts and the compare page's mean ± std bands.
import { test } from "node:test";
import assert from "node:assert/strict";

import { align, interpolate, lowerBound, meanStd, smooth } from "../../web/static/js/pure/series_math.js";

test("lowerBound finds the first step at or after", () => {
  const steps = [1, 3, 3, 7];
  assert.deepEqual([0, 1, 2, 3, 4, 7, 8].map((step) => lowerBound(steps, step)), [0, 0, 1, 1, 3, 3, 4]);
  assert.equal(lowerBound([], 5), 0);
});

test("interpolate inside a series' range, null outside", () => {
  const steps = [1, 2, 4];
  const values = [10, 20, 40];
  assert.equal(interpolate(steps, values, 2), 20);
  assert.equal(interpolate(steps, values, 3), 30);
  assert.equal(interpolate(steps, values, 1.5), 15);
  assert.equal(interpolate(steps, values, 0), null);
  assert.equal(interpolate(steps, values, 5), null);
  assert.equal(interpolate([], [], 1), null);
});

test("smoothing is debiased: a constant stays constant, gaps stay gaps", () => {
  assert.deepEqual(smooth([2, 2, null, 2], 0.9), [2, 2, null, 2]);
  assert.deepEqual(smooth([1, 2, 3], 0), [1, 2, 3]);
  const [first, second] = smooth([0, 10], 0.5);
  assert.equal(first, 0);
  assert.ok(Math.abs(second - 20 / 3) < 1e-12, String(second));
});

test("align puts several series on the union of their steps with gaps", () => {
  const { xs, columns } = align([
    { steps: [1, 3], values: [0.5, -1] },
    undefined,
    { steps: [2, 3, 10], values: [4, 5, 6] },
  ]);
  assert.deepEqual(xs, [1, 2, 3, 10]);
  assert.deepEqual(columns, [[0.5, null, -1, null], [null, null, null, null], [null, 4, 5, 6]]);
  const log = align([{ steps: [1, 2, 3], values: [0, -1, 2] }], { positiveOnly: true });
  assert.deepEqual(log.columns, [[null, null, 2]]);
});

test("meanStd over runs with different steps uses each run only inside its range", () => {
  const out = meanStd([
    { steps: [1, 2, 3], values: [1, 2, 3] },
    { steps: [1, 3], values: [3, 5] },
    { steps: [], values: [] },
  ]);
  assert.deepEqual(out.steps, [1, 2, 3]);
  assert.deepEqual(out.mean, [2, 3, 4]);
  assert.deepEqual(out.count, [2, 2, 2]);
  assert.ok(out.std.every((std) => Math.abs(std - Math.SQRT2) < 1e-12), String(out.std));
  const single = meanStd([{ steps: [5], values: [7] }]);
  assert.deepEqual(single, { steps: [5], mean: [7], std: [0], count: [1] });
});
