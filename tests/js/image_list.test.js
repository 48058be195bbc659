// The "Images" list's state: sorting worst first, paging, the query sent, the sparkline.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  PAGE_SIZE, imagesQuery, initialState, nearestEpoch, orderLabel, pageInfo, pageText, predictedText, sparkRange,
  sparkline, update, worstFirst,
} from "../../web/static/js/pure/image_list.js";

test("worst first is the lowest IoU or Dice and the most pixels wrong", () => {
  assert.equal(worstFirst("iou"), "asc");
  assert.equal(worstFirst("dice"), "asc");
  assert.equal(worstFirst("pixels_wrong"), "desc");
  assert.equal(orderLabel("pixels_wrong", "desc"), "worst first");
  assert.equal(orderLabel("iou", "desc"), "best first");
  assert.equal(orderLabel("name", "asc"), "A to Z");
});

test("a new sort starts worst first on the first page; paging keeps the rest", () => {
  let state = update(initialState(), { offset: 50 });
  assert.equal(state.offset, 50);
  state = update(state, { sort: "pixels_wrong" });
  assert.deepEqual([state.sort, state.order, state.offset], ["pixels_wrong", "desc", 0]);
  state = update(state, { sort: "dice", order: "desc" });
  assert.equal(state.order, "desc", "an order given with the sort is kept");
  state = update(update(state, { offset: 25 }), { className: "road" });
  assert.equal(state.offset, 0, "a filter goes back to the first page");
});

test("worse than the epoch shown is dropped", () => {
  const state = update(update(initialState(), { worseThan: 3 }), { epoch: 3 });
  assert.equal(state.worseThan, null);
});

test("the query names only what is set", () => {
  assert.equal(imagesQuery(initialState()), `sort=iou&order=asc&limit=${PAGE_SIZE}&offset=0`);
  const state = update(initialState(), { epoch: 4, className: "a b", worseThan: 2, sort: "name" });
  const params = new URLSearchParams(imagesQuery(state));
  assert.equal(params.get("epoch"), "4");
  assert.equal(params.get("class"), "a b");
  assert.equal(params.get("worse_than"), "2");
  assert.equal(params.get("sort"), "name");
});

test("pages: rows shown, neighbours, the last page", () => {
  assert.deepEqual(pageInfo(60, 25, 25), { page: 2, pages: 3, from: 26, to: 50, previous: 0, next: 50, last: 50 });
  assert.deepEqual(pageInfo(60, 50, 25), { page: 3, pages: 3, from: 51, to: 60, previous: 25, next: null, last: 50 });
  assert.deepEqual(pageInfo(0, 0, 25), { page: 1, pages: 1, from: 0, to: 0, previous: null, next: null, last: 0 });
  assert.equal(pageText(1234, 25, 25), "26–50 of 1,234 images (page 2 of 50)");
  assert.equal(pageText(1, 0, 25), "1–1 of 1 image (page 1 of 1)");
  assert.equal(pageText(0, 0, 25), "no images");
});

test("the nearest stored epoch, the earlier on a tie", () => {
  assert.equal(nearestEpoch([1, 2, 5, 9], 4), 5);
  assert.equal(nearestEpoch([1, 3], 2), 1);
  assert.equal(nearestEpoch([], 2), null);
});

test("a sparkline spans the box, 1 at the top, and marks one point", () => {
  const { path, dot } = sparkline([0, 1, 0.5], 100, 20, 1, 0);
  assert.equal(path, "M0,20L50,0L100,10");
  assert.deepEqual(dot, { x: 50, y: 0 });
  assert.equal(sparkline([2], 10, 10, 0, 0).path, "M5,0", "one point sits in the middle, clamped to 1");
  assert.equal(sparkline([0.5], 10, 10, 3).dot, null);
  assert.equal(sparkline([0.2, 0.4], 10, 10, -1, 0, [0.2, 0.4]).path, "M0,10L10,0", "a range fills the box");
});

test("a sparkline's range: the values' own, at least the minimum span, within 0..1", () => {
  const near = (actual, expected) => assert.ok(
    actual.every((value, i) => Math.abs(value - expected[i]) < 1e-9), `${actual} is not ${expected}`);
  near(sparkRange([0.1, 0.6, 0.3]), [0.1, 0.6]);
  near(sparkRange([0.5, 0.52]), [0.46, 0.56]);
  near(sparkRange([0, 0.01]), [0, 0.1]);
  near(sparkRange([1, 1]), [0.9, 1]);
  near(sparkRange([]), [0, 1]);
});

test("the validation views' epoch: nearest stored, following new epochs only from the latest", async () => {
  const { EpochChoice } = await import("../../web/static/js/pure/epoch_choice.js");
  const choice = new EpochChoice();
  let changes = 0;
  choice.onChange(() => { changes += 1; });
  choice.setEpochs([3, 1, 2]);
  assert.deepEqual([choice.epochs, choice.current], [[1, 2, 3], 3]);
  choice.add(4);
  assert.equal(choice.current, 4, "the latest was shown: the new one is");
  assert.equal(choice.choose(1.6), true);
  assert.equal(choice.current, 2);
  assert.equal(choice.choose(2), false, "the same epoch again changes nothing");
  choice.add(5);
  assert.deepEqual([choice.epochs, choice.current], [[1, 2, 3, 4, 5], 2], "an older epoch stays shown");
  assert.equal(changes, 4);
});

test("an image predicted already names the epochs of the weights used", () => {
  assert.equal(predictedText([4]), "predicted (epoch 4)");
  assert.equal(predictedText([2, 4]), "predicted (epochs 2, 4)");
});
