// Mask preview tiles: one canvas per view of a validation sample (image, truth, prediction,
// overlay, errors) painted with the page's class palette, and the error view's legend.

import { el } from "./dom.js";
import { load, paintErrors, paintImage, paintMask, paintOutline, paintOverlay } from "./mask_canvas.js";
import { ERROR_COLORS } from "./pure/mask_pixels.js";

/** @type {Record<string, string>} */
const KIND_TITLES = {
  image: "Image", truth: "Truth", prediction: "Prediction", overlay: "Overlay", errors: "Errors",
};

/** The kinds of tile there are, in the order a sample's row shows them. */
export const KINDS = Object.freeze(["image", "truth", "prediction", "overlay", "errors"]);

/**
 * What every tile of a page shares: the class palette, the overlay's opacity and whether the
 * truth's outline is drawn over predictions and overlays.
 * @typedef {{palette: import("./class_palette.js").Palette, opacity: number, outline?: boolean}} TileView
 */

/**
 * A canvas of one preview sample; `ready` settles once it is first painted, `repaint()` redraws
 * it with the view's current colours and opacity.
 * @typedef {{element: HTMLElement, canvas: HTMLCanvasElement, kind: string, ready: Promise<void>, repaint: () => void}} Tile
 */

/**
 * One canvas showing `kind` of a preview sample ({name, image_url, truth_url, prediction_url}).
 * @param {string} kind one of KINDS
 * @param {any} sample
 * @param {TileView} view
 * @param {string} [caption] instead of the kind's title
 * @returns {Tile}
 */
export function tile(kind, sample, view, caption) {
  const canvas = el("canvas", { class: `mask-canvas kind-${kind}`, width: 1, height: 1, "data-kind": kind, role: "img" });
  const status = el("span", { class: "tile-status" }, "loading…");
  const element = el("figure", { class: "mask-tile" }, canvas, el("figcaption", {}, caption || KIND_TITLES[kind], status));
  const needs = {
    image: ["image_url"], truth: ["truth_url"], prediction: ["prediction_url"],
    overlay: ["image_url", "prediction_url"], errors: ["image_url", "truth_url", "prediction_url"],
  }[kind];
  canvas.dataset.src = sample[needs[needs.length - 1]];
  // Predictions and overlays also load the truth, for the truth-outline mode.
  const outlined = kind === "prediction" || kind === "overlay";
  const loads = outlined ? [...needs, "truth_url"] : needs;
  canvas.setAttribute("aria-label", `${KIND_TITLES[kind]} of ${sample.name}`);
  /** @type {import("./pure/mask_pixels.js").Pixels[] | null} */
  let images = null;
  const repaint = () => {
    if (!images) return;
    const [first, second, third] = images;
    if (kind === "errors") {
      const counts = paintErrors(canvas, first, second, third);
      const pixels = first.width * first.height || 1;
      status.textContent = ` ${((100 * (counts.fp + counts.fn + counts.both)) / pixels).toFixed(1)}% wrong`;
      return;
    }
    if (kind === "image") paintImage(canvas, first);
    else if (kind === "truth" || kind === "prediction") paintMask(canvas, first, view.palette.table());
    else paintOverlay(canvas, first, second, view.palette.table(), view.opacity, view.palette.hidden);
    if (outlined && view.outline) paintOutline(canvas, images[images.length - 1]);
    status.textContent = "";
  };
  const ready = Promise.all(loads.map((field) => load(sample[field]))).then((loaded) => {
    images = loaded;
    element.classList.add("loaded");
    repaint();
  }, (error) => {
    status.textContent = ` ${error.message}`;
    element.classList.add("failed");
  });
  return { element, canvas, kind, ready, repaint };
}

/** The error view's colours and what each means. */
export function errorLegend() {
  return el("ul", { class: "error-legend", "aria-label": "Error view colours" },
    ...["fp", "fn", "both", "ignore"].map((kind) => el("li", {},
      el("span", { class: "swatch", style: `background: rgb(${ERROR_COLORS[kind].rgb.join(",")})` }),
      ERROR_COLORS[kind].label)));
}
