// Pixel maths of mask previews, on RGBA arrays: class-index masks (grey value = class index,
// 255 = ignored) coloured with a palette, blended over their image, and compared with the truth.

import { parseHex } from "./colors.js";

/** The class index of ignored pixels. */
export const IGNORE = 255;
const IGNORE_RGBA = [150, 150, 150, 255];
const UNKNOWN_RGBA = [255, 255, 255, 255];

/** @typedef {"fp" | "fn" | "both" | "ignore"} ErrorKind */

/** @type {Readonly<Record<ErrorKind, {rgb: number[], label: string}>>} */
export const ERROR_COLORS = Object.freeze({
  fp: { rgb: [255, 0, 255], label: "false positive: predicted a class the truth does not have" },
  fn: { rgb: [0, 220, 255], label: "false negative: a truth class predicted as background" },
  both: { rgb: [255, 200, 0], label: "wrong class: predicted one foreground class for another" },
  ignore: { rgb: IGNORE_RGBA.slice(0, 3), label: "ignored pixels (255)" },
});

/**
 * A decoded PNG: RGBA bytes row by row; `indices` caches its class indices once read.
 * @typedef {{width: number, height: number, rgba: Uint8ClampedArray, indices?: Uint8Array}} Pixels
 */

/**
 * RGBA per class index (256 × 4 bytes): the palette's colours, grey for ignored pixels, white
 * for indices the palette has no colour for.
 * @param {string[]} colors '#rrggbb' per class
 */
export function lookupTable(colors) {
  const table = new Uint8ClampedArray(256 * 4);
  for (let i = 0; i < 256; i++) table.set(UNKNOWN_RGBA, i * 4);
  colors.forEach((color, i) => { if (i < IGNORE) table.set([...(parseHex(color) || [0, 0, 0]), 255], i * 4); });
  table.set(IGNORE_RGBA, IGNORE * 4);
  return table;
}

/**
 * Class indices of a mask (grey or palette PNGs decode to R = G = B = index), cached on it.
 * @param {Pixels} image
 */
export function indices(image) {
  if (!image.indices) {
    const out = new Uint8Array(image.width * image.height);
    for (let i = 0; i < out.length; i++) out[i] = image.rgba[i * 4];
    image.indices = out;
  }
  return image.indices;
}

/**
 * The image's RGBA resampled (nearest) to width × height; the same array when the sizes match.
 * @param {Pixels} image
 * @param {number} width
 * @param {number} height
 */
export function resized(image, width, height) {
  if (image.width === width && image.height === height) return image.rgba;
  const out = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++) {
    const sy = Math.min(image.height - 1, Math.floor((y * image.height) / height));
    for (let x = 0; x < width; x++) {
      const sx = Math.min(image.width - 1, Math.floor((x * image.width) / width));
      const from = (sy * image.width + sx) * 4;
      out.set(image.rgba.subarray(from, from + 4), (y * width + x) * 4);
    }
  }
  return out;
}

/**
 * A mask in its classes' colours (opaque).
 * @param {Pixels} mask
 * @param {Uint8ClampedArray} table from lookupTable
 */
export function maskPixels(mask, table) {
  const labels = indices(mask);
  const out = new Uint8ClampedArray(labels.length * 4);
  for (let i = 0; i < labels.length; i++) {
    const from = labels[i] * 4;
    out[i * 4] = table[from]; out[i * 4 + 1] = table[from + 1];
    out[i * 4 + 2] = table[from + 2]; out[i * 4 + 3] = 255;
  }
  return out;
}

/**
 * A mask with only its classes painted: indices without a colour, ignored pixels and the
 * classes in `clear` stay transparent (to lay the mask over its image).
 * @param {Pixels} mask
 * @param {string[]} colors '#rrggbb' per class (anything else paints grey)
 * @param {Iterable<number>} [clear] class indices left transparent
 */
export function classPixels(mask, colors, clear = []) {
  const skip = new Set(clear);
  const rgbs = colors.map((color, index) => (skip.has(index) ? null : parseHex(color) || [128, 128, 128]));
  const labels = indices(mask);
  const out = new Uint8ClampedArray(labels.length * 4);
  for (let i = 0; i < labels.length; i++) {
    const rgb = rgbs[labels[i]];
    if (!rgb) continue;
    out[i * 4] = rgb[0]; out[i * 4 + 1] = rgb[1]; out[i * 4 + 2] = rgb[2]; out[i * 4 + 3] = 255;
  }
  return out;
}

/**
 * The image (resized to the mask) with every shown class blended in at `opacity`; hidden
 * classes and ignored pixels leave the image as it is.
 * @param {Pixels} image
 * @param {Pixels} mask
 * @param {Uint8ClampedArray} table from lookupTable
 * @param {number} opacity 0 to 1
 * @param {Set<number>} hidden class indices not painted
 */
export function overlayPixels(image, mask, table, opacity, hidden) {
  const labels = indices(mask);
  const base = resized(image, mask.width, mask.height);
  const out = new Uint8ClampedArray(base.length);
  out.set(base);
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i];
    if (label === IGNORE || hidden.has(label)) continue;
    const o = i * 4;
    const t = label * 4;
    out[o] = base[o] + (table[t] - base[o]) * opacity;
    out[o + 1] = base[o + 1] + (table[t + 1] - base[o + 1]) * opacity;
    out[o + 2] = base[o + 2] + (table[t + 2] - base[o + 2]) * opacity;
    out[o + 3] = 255;
  }
  return out;
}

/**
 * Errors over a dimmed grey image, class 0 being background. False positive: predicted a
 * foreground class where the truth is background; false negative: truth foreground predicted
 * as background; wrong class: both foreground but different (it is both at once).
 * @param {Pixels} image
 * @param {Pixels} truth
 * @param {Pixels} prediction same size as the truth
 * @returns {{pixels: Uint8ClampedArray<ArrayBuffer>, counts: Record<ErrorKind, number>}}
 */
export function errorPixels(image, truth, prediction) {
  const truthLabels = indices(truth);
  const predicted = indices(prediction);
  const base = resized(image, truth.width, truth.height);
  const pixels = new Uint8ClampedArray(truthLabels.length * 4);
  /** @type {Record<ErrorKind, number>} */
  const counts = { fp: 0, fn: 0, both: 0, ignore: 0 };
  for (let i = 0; i < truthLabels.length; i++) {
    const o = i * 4;
    const t = truthLabels[i];
    const p = predicted[i];
    /** @type {ErrorKind | null} */
    let kind = null;
    if (t === IGNORE) kind = "ignore";
    else if (t !== p) kind = t === 0 ? "fp" : p === 0 ? "fn" : "both";
    if (kind) {
      counts[kind] += 1;
      pixels.set(ERROR_COLORS[kind].rgb, o);
    } else {
      const grey = 0.35 * (0.299 * base[o] + 0.587 * base[o + 1] + 0.114 * base[o + 2]) + 20;
      pixels[o] = grey; pixels[o + 1] = grey; pixels[o + 2] = grey;
    }
    pixels[o + 3] = 255;
  }
  return { pixels, counts };
}
