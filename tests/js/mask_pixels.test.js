// Mask preview pixels: class colours, overlays, the error view's kinds of error.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  ERROR_COLORS, IGNORE, classPixels, errorPixels, indices, lookupTable, maskPixels, overlayPixels, resized,
} from "../../web/static/js/pure/mask_pixels.js";

/** A width × height image whose pixels are grey values (class indices for a mask). */
function grey(width, height, values) {
  const rgba = new Uint8ClampedArray(width * height * 4);
  values.forEach((value, i) => rgba.set([value, value, value, 255], i * 4));
  return { width, height, rgba };
}

/** The RGBA of pixel i. */
const pixel = (data, i) => [...data.slice(i * 4, i * 4 + 4)];

test("the lookup table: palette colours, grey for ignored, white for unknown indices", () => {
  const table = lookupTable(["#000000", "#ff0000", "nonsense"]);
  assert.deepEqual(pixel(table, 1), [255, 0, 0, 255]);
  assert.deepEqual(pixel(table, 2), [0, 0, 0, 255]);
  assert.deepEqual(pixel(table, 3), [255, 255, 255, 255]);
  assert.deepEqual(pixel(table, IGNORE), [150, 150, 150, 255]);
});

test("indices read the red channel and are cached on the image", () => {
  const mask = grey(2, 1, [0, 3]);
  assert.deepEqual([...indices(mask)], [0, 3]);
  assert.equal(indices(mask), indices(mask));
});

test("a mask painted in its classes' colours", () => {
  const out = maskPixels(grey(3, 1, [0, 1, IGNORE]), lookupTable(["#000000", "#00ff00"]));
  assert.deepEqual([pixel(out, 0), pixel(out, 1), pixel(out, 2)], [[0, 0, 0, 255], [0, 255, 0, 255], [150, 150, 150, 255]]);
});

test("classPixels leaves cleared classes, ignored pixels and unknown indices transparent", () => {
  const out = classPixels(grey(4, 1, [0, 1, IGNORE, 7]), ["#102030", "#ff0000"], [0]);
  assert.equal(out[3], 0);
  assert.deepEqual(pixel(out, 1), [255, 0, 0, 255]);
  assert.equal(out[2 * 4 + 3], 0);
  assert.equal(out[3 * 4 + 3], 0);
  assert.deepEqual(pixel(classPixels(grey(1, 1, [0]), ["bad"]), 0), [128, 128, 128, 255]);
});

test("nearest resampling to the mask's size", () => {
  const image = grey(2, 1, [10, 200]);
  assert.equal(resized(image, 2, 1), image.rgba);
  const wide = resized(image, 4, 2);
  assert.deepEqual([0, 1, 2, 3, 4, 7].map((i) => wide[i * 4]), [10, 10, 200, 200, 10, 200]);
});

test("the overlay blends shown classes and leaves hidden and ignored pixels as they are", () => {
  const image = grey(4, 1, [100, 100, 100, 100]);
  const mask = grey(4, 1, [0, 1, 2, IGNORE]);
  const table = lookupTable(["#000000", "#ffffff", "#000000"]);
  const out = overlayPixels(image, mask, table, 0.5, new Set([0]));
  assert.deepEqual([0, 1, 2, 3].map((i) => out[i * 4]), [100, 178, 50, 100]);
  assert.equal(image.rgba[4], 100, "the image itself is untouched");
});

test("error view: false positives, false negatives, wrong classes and ignored pixels counted", () => {
  const image = grey(6, 1, [0, 0, 0, 0, 0, 0]);
  const truth = grey(6, 1, [0, 0, 1, 1, 2, IGNORE]);
  const prediction = grey(6, 1, [0, 1, 0, 1, 1, 0]);
  const { pixels, counts } = errorPixels(image, truth, prediction);
  assert.deepEqual(counts, { fp: 1, fn: 1, both: 1, ignore: 1 });
  assert.deepEqual(pixel(pixels, 1).slice(0, 3), ERROR_COLORS.fp.rgb);
  assert.deepEqual(pixel(pixels, 2).slice(0, 3), ERROR_COLORS.fn.rgb);
  assert.deepEqual(pixel(pixels, 4).slice(0, 3), ERROR_COLORS.both.rgb);
  assert.deepEqual(pixel(pixels, 0), [20, 20, 20, 255], "right pixels are the dimmed image");
});
