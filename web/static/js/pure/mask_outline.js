// The truth-outline mode of the mask previews: the truth's class boundaries (every labelled,
// non-background pixel with a 4-neighbour of another class) drawn over the prediction or its
// overlay, so a prediction is read against the edges it should have.

import { IGNORE } from "./mask_pixels.js";

/** The outline's colour: white with a dark edge reads on every class colour and on the image. */
export const OUTLINE_RGBA = Object.freeze([255, 255, 255, 255]);
export const OUTLINE_EDGE_RGBA = Object.freeze([0, 0, 0, 255]);

/**
 * 1 where a truth pixel lies on a class boundary: its class is neither `background` nor ignored
 * and a 4-neighbour inside the image has another class that is not ignored (an object's edge,
 * drawn on its inside). Ignored pixels never make a boundary.
 * @param {Uint8Array} classes class index per pixel, row by row
 * @param {number} width
 * @param {number} height
 * @param {number} [background] the class never outlined
 * @returns {Uint8Array}
 */
export function outline(classes, width, height, background = 0) {
  const out = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      const c = classes[i];
      if (c === background || c === IGNORE) continue;
      const differs = (/** @type {number} */ j) => classes[j] !== c && classes[j] !== IGNORE;
      if ((x > 0 && differs(i - 1)) || (x < width - 1 && differs(i + 1))
        || (y > 0 && differs(i - width)) || (y < height - 1 && differs(i + width))) out[i] = 1;
    }
  }
  return out;
}

/**
 * `rgba` (width x height) with the outline painted in: outline pixels white, and the pixels just
 * outside an object (of another class than the outline pixel beside them) dark, so the line
 * reads on light and dark colours alike without thickening into the object.
 * @param {Uint8ClampedArray} rgba the prediction or overlay as painted
 * @param {Uint8Array} line from `outline`, same size
 * @param {Uint8Array} classes the truth's class indices `line` came from
 * @param {number} width
 * @param {number} height
 * @returns {Uint8ClampedArray<ArrayBuffer>}
 */
export function drawOutline(rgba, line, classes, width, height) {
  const out = new Uint8ClampedArray(rgba);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      if (line[i]) { out.set(OUTLINE_RGBA, i * 4); continue; }
      const outside = (/** @type {number} */ j) => line[j] === 1 && classes[j] !== classes[i];
      if ((x > 0 && outside(i - 1)) || (x < width - 1 && outside(i + 1))
        || (y > 0 && outside(i - width)) || (y < height - 1 && outside(i + width))) {
        out.set(OUTLINE_EDGE_RGBA, i * 4);
      }
    }
  }
  return out;
}
