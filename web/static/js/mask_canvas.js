// Mask previews painted on canvases: PNGs decoded exactly as stored (no colour management, so a
// class index of 3 reads 3) and cached by URL, then drawn as an image, a coloured mask, an
// overlay or an error view (pixel maths in pure/mask_pixels.js).

import { drawOutline, outline } from "./pure/mask_outline.js";
import { classPixels, errorPixels, indices, maskPixels, overlayPixels } from "./pure/mask_pixels.js";

/** @typedef {import("./pure/mask_pixels.js").Pixels} Pixels */

/** @type {Map<string, Promise<Pixels>>} */
const decoded = new Map();
const CACHE_LIMIT = 400;

/**
 * RGBA pixels of a PNG exactly as stored.
 * @param {string} url
 * @returns {Promise<Pixels>}
 */
async function decode(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`could not load ${url} (${response.status})`);
  const bitmap = await createImageBitmap(await response.blob(), {
    colorSpaceConversion: "none", premultiplyAlpha: "none",
  });
  const canvas = document.createElement("canvas");
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(bitmap, 0, 0);
  bitmap.close();
  const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
  return { width: canvas.width, height: canvas.height, rgba: data };
}

/**
 * A decoded PNG, cached by URL (preview and sample URLs never change content); the least
 * recently used go first.
 * @param {string} url
 * @returns {Promise<Pixels>}
 */
export function load(url) {
  let promise = decoded.get(url);
  if (promise) {
    decoded.delete(url);
    decoded.set(url, promise);
    return promise;
  }
  promise = decode(url);
  promise.catch(() => decoded.delete(url));
  decoded.set(url, promise);
  if (decoded.size > CACHE_LIMIT) decoded.delete(decoded.keys().next().value);
  return promise;
}

/**
 * @param {HTMLCanvasElement} canvas
 * @param {number} width
 * @param {number} height
 * @param {Uint8ClampedArray<ArrayBuffer>} pixels RGBA
 */
function put(canvas, width, height, pixels) {
  canvas.width = width;
  canvas.height = height;
  canvas.getContext("2d").putImageData(new ImageData(pixels, width, height), 0, 0);
}

/**
 * @param {HTMLCanvasElement} canvas
 * @param {Pixels} image
 */
export function paintImage(canvas, image) {
  put(canvas, image.width, image.height, new Uint8ClampedArray(image.rgba));
}

/**
 * @param {HTMLCanvasElement} canvas
 * @param {Pixels} mask
 * @param {Uint8ClampedArray} table the palette's lookupTable
 */
export function paintMask(canvas, mask, table) {
  put(canvas, mask.width, mask.height, maskPixels(mask, table));
}

/**
 * @param {HTMLCanvasElement} canvas
 * @param {Pixels} image
 * @param {Pixels} mask
 * @param {Uint8ClampedArray} table the palette's lookupTable
 * @param {number} opacity
 * @param {Set<number>} hidden classes not painted
 */
export function paintOverlay(canvas, image, mask, table, opacity, hidden) {
  put(canvas, mask.width, mask.height, overlayPixels(image, mask, table, opacity, hidden));
}

/**
 * The error view; returns the pixel counts of each kind of error.
 * @param {HTMLCanvasElement} canvas
 * @param {Pixels} image
 * @param {Pixels} truth
 * @param {Pixels} prediction
 */
export function paintErrors(canvas, image, truth, prediction) {
  const { pixels, counts } = errorPixels(image, truth, prediction);
  put(canvas, truth.width, truth.height, pixels);
  return counts;
}

/**
 * Draw the truth's class boundaries over what `canvas` shows (a prediction or overlay painted
 * at the truth's size; another size is left as it is).
 * @param {HTMLCanvasElement} canvas
 * @param {Pixels & {outline?: Uint8Array}} truth
 */
export function paintOutline(canvas, truth) {
  if (canvas.width !== truth.width || canvas.height !== truth.height) return;
  const classes = indices(truth);
  if (!truth.outline) truth.outline = outline(classes, truth.width, truth.height);
  const context = canvas.getContext("2d", { willReadFrequently: true });
  const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
  put(canvas, truth.width, truth.height, drawOutline(data, truth.outline, classes, truth.width, truth.height));
}

/**
 * Paint the class-index mask PNG at `url` in the classes' colours; ignored pixels, indices
 * without a colour and the classes in `clear` stay transparent.
 * @param {HTMLCanvasElement} canvas
 * @param {string} url
 * @param {string[]} colors
 * @param {number[]} [clear]
 */
export async function paintClasses(canvas, url, colors, clear = []) {
  const mask = await load(url);
  put(canvas, mask.width, mask.height, classPixels(mask, colors, clear));
  return canvas;
}
