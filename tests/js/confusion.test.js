// The confusion heatmap's maths: normalisation by true class, the colour scale, text contrast.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  EMPTY_COLOR, RAMP, cellColor, cellLayout, cellText, normalise, rampColor, scalePositions, textColor, totals,
} from "../../web/static/js/pure/confusion.js";

const hex = (rgb) => `#${rgb.map((c) => c.toString(16).padStart(2, "0")).join("")}`;

test("normalised by true class, each row sums to one; an absent class's row is empty", () => {
  const shares = normalise([[6, 2], [0, 0], [1, 3]], "true");
  assert.deepEqual(shares, [[0.75, 0.25], [null, null], [0.25, 0.75]]);
  const counts = [[6, 2], [1, 3]];
  const copy = normalise(counts, "counts");
  assert.deepEqual(copy, counts);
  assert.notEqual(copy[0], counts[0], "a copy, never the caller's rows");
});

test("counts sit on a log scale, shares on a linear one", () => {
  const counts = scalePositions([[999_999, 9], [0, 99]], "counts");
  assert.equal(counts[0][0], 1);
  assert.equal(counts[1][0], 0);
  assert.ok(Math.abs(counts[0][1] - Math.log(10) / Math.log(1e6)) < 1e-9);
  // A small class's pixels are visible beside the background's million.
  assert.ok(counts[1][1] > 0.3);
  assert.deepEqual(scalePositions([[0.5, null]], "true"), [[0.5, null]]);
  assert.deepEqual(scalePositions([[0, 0]], "counts"), [[0, 0]]);
});

test("the ramp runs from its first stop to its last, getting darker all the way", () => {
  assert.equal(rampColor(0), hex(RAMP[0]));
  assert.equal(rampColor(1), hex(RAMP[RAMP.length - 1]));
  assert.equal(rampColor(-3), rampColor(0));
  assert.equal(rampColor(Number.NaN), rampColor(0));
  const lightness = (color) => [1, 3, 5].reduce((sum, i) => sum + parseInt(color.slice(i, i + 2), 16), 0);
  let previous = Infinity;
  for (let i = 0; i <= 30; i++) {
    const value = lightness(rampColor(i / 30));
    assert.ok(value < previous, `step ${i} is darker than the one before`);
    previous = value;
  }
  assert.equal(cellColor(null), EMPTY_COLOR);
  assert.notEqual(cellColor(0), EMPTY_COLOR, "a zero cell differs from a cell with nothing to show");
});

test("text is black on light cells and white on dark ones", () => {
  assert.equal(textColor(rampColor(0)), "#000000");
  assert.equal(textColor(rampColor(1)), "#ffffff");
  assert.equal(textColor("#ffffff"), "#000000");
  assert.equal(textColor("#000000"), "#ffffff");
});

test("cells shrink with the class count and stop printing values when small", () => {
  assert.deepEqual(cellLayout(2, 640), { side: 64, labelled: true });
  assert.deepEqual(cellLayout(12, 640), { side: 53, labelled: true });
  assert.deepEqual(cellLayout(30, 640), { side: 21, labelled: false });
  assert.equal(cellLayout(200, 640).side, 14);
});

test("cell text: percentages of the true class, compact counts", () => {
  assert.equal(cellText(0.5, "true"), "50%");
  assert.equal(cellText(0.053, "true"), "5.3%");
  assert.equal(cellText(0.0004, "true"), "<0.1%");
  assert.equal(cellText(0, "true"), "0%");
  assert.equal(cellText(null, "true"), "–");
  assert.equal(cellText(999, "counts"), "999");
  assert.equal(cellText(1500, "counts"), "1.5k");
  assert.equal(cellText(2_000_000, "counts"), "2M");
  assert.equal(cellText(123_456_789, "counts"), "123M");
});

test("totals by truth row, prediction column and overall", () => {
  assert.deepEqual(totals([[6, 2], [1, 3]]), { rows: [8, 4], columns: [7, 5], all: 12 });
  assert.deepEqual(totals([]), { rows: [], columns: [], all: 0 });
});
