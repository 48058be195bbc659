// The truth-outline mode: class boundaries of the truth drawn over a prediction.
import { test } from "node:test";
import assert from "node:assert/strict";

import { OUTLINE_EDGE_RGBA, OUTLINE_RGBA, drawOutline, outline } from "../../web/static/js/pure/mask_outline.js";

/** Rows of class indices as one array. */
const grid = (rows) => Uint8Array.from(rows.flat());

test("a square object is outlined on its inside; background and its interior are not", () => {
  const truth = grid([
    [0, 0, 0, 0, 0],
    [0, 1, 1, 1, 0],
    [0, 1, 1, 1, 0],
    [0, 1, 1, 1, 0],
    [0, 0, 0, 0, 0],
  ]);
  assert.deepEqual([...outline(truth, 5, 5)], [...grid([
    [0, 0, 0, 0, 0],
    [0, 1, 1, 1, 0],
    [0, 1, 0, 1, 0],
    [0, 1, 1, 1, 0],
    [0, 0, 0, 0, 0],
  ])]);
});

test("two touching classes both outline their shared edge; ignored pixels and image edges make none", () => {
  const truth = grid([
    [1, 1, 2, 2],
    [1, 1, 2, 2],
    [255, 255, 255, 255],
  ]);
  assert.deepEqual([...outline(truth, 4, 3)], [...grid([
    [0, 1, 1, 0],
    [0, 1, 1, 0],
    [0, 0, 0, 0],
  ])]);
  assert.deepEqual([...outline(grid([[3, 3], [3, 3]]), 2, 2)], [0, 0, 0, 0]);
  assert.deepEqual([...outline(grid([[1, 0]]), 2, 1, 1)], [0, 1], "the chosen background is never outlined");
});

test("drawing: outline pixels white, the pixels just outside dark, the rest untouched", () => {
  const truth = grid([[0, 1, 1, 1]]);
  const line = outline(truth, 4, 1);
  assert.deepEqual([...line], [0, 1, 0, 0]);
  const base = new Uint8ClampedArray(4 * 4).fill(100);
  const drawn = drawOutline(base, line, truth, 4, 1);
  const pixel = (i) => [...drawn.slice(i * 4, i * 4 + 4)];
  assert.deepEqual(pixel(0), [...OUTLINE_EDGE_RGBA]);
  assert.deepEqual(pixel(1), [...OUTLINE_RGBA]);
  assert.deepEqual(pixel(2), [100, 100, 100, 100], "inside the object the line does not thicken");
  assert.equal(base[4], 100, "the base is left alone");
});
