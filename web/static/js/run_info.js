// What the trainer resolved about the data before epoch 1 (the run's `run_info`), shown in the
// run page's facts: image counts, input channels, classes, parameters, steps per epoch, the
// processes training together and the images per optimizer step, the mask value -> class
// mapping, and the data warnings in a box of their own. Text nodes only: class names and
// warnings come from user files.

import { el } from "./dom.js";
import { compactCount } from "./pure/format.js";

const MAPPING_SHOWN = 24;
/** @type {Record<string, string>} */
const MODES = {
  grey: "grey values",
  index: "palette indices",
  rgb: "RGB colours",
  "class-folders": "one mask folder per class",
};

/**
 * @param {string} label
 * @param {any} value text or nodes
 * @param {{wide?: boolean, title?: string | null}} [options]
 */
function fact(label, value, { wide = false, title = null } = {}) {
  return el("div", { class: wide ? "fact fact-wide" : "fact", "data-fact": label },
    el("dt", {}, label), el("dd", { title }, value));
}

function isColour(value) {
  return Array.isArray(value) && value.length === 3;
}

function rawValue(value) {
  if (!isColour(value)) return [String(value)];
  const [r, g, b] = value.map((part) => Math.min(255, Math.max(0, Math.round(Number(part)) || 0)));
  return [el("span", { class: "swatch", style: `background: rgb(${r}, ${g}, ${b})`, "aria-hidden": "true" }), `(${r}, ${g}, ${b})`];
}

// [[raw value parts, class name], ...] in class order.
function mappingPairs(encoding, names) {
  const name = (index) => names[index] ?? `class ${index}`;
  if (encoding.mode === "class-folders") {
    return encoding.values.map((_, index) => [[index === 0 ? "no folder" : `${name(index)}/`], name(index)]);
  }
  return encoding.values.map((value, index) => [rawValue(value), name(index)]);
}

function mapping(encoding, names) {
  const pairs = mappingPairs(encoding, names);
  const shown = pairs.slice(0, MAPPING_SHOWN);
  const parts = [];
  shown.forEach(([raw, name], index) => {
    if (index) parts.push(", ");
    parts.push(el("span", { class: "mapping-pair" }, ...raw, " → ", name));
  });
  if (pairs.length > shown.length) parts.push(` … and ${pairs.length - shown.length} more`);
  if (encoding.ignore_values.length) {
    parts.push("; ignored: ", ...encoding.ignore_values.flatMap((value, index) => [index ? ", " : "", ...rawValue(value)]));
  }
  const mode = MODES[encoding.mode] || encoding.mode;
  parts.push(el("span", { class: "muted" }, ` (${mode})`));
  const text = pairs.map(([raw, name]) => `${raw.map((part) => (typeof part === "string" ? part : "")).join("")} → ${name}`).join(", ");
  return { parts, text };
}

/**
 * Facts to append to the run's <dl>, or none before the trainer has reported.
 * @param {any} run
 * @returns {HTMLElement[]}
 */
export function facts(run) {
  const info = run.run_info;
  if (!info) return [];
  const names = run.class_names || [];
  const items = [
    fact("Images", `${info.num_train} train / ${info.num_val} val`),
    fact("Input channels", String(info.in_channels)),
    fact("Classes", String(info.mask_encoding ? info.mask_encoding.values.length : names.length)),
    fact("Parameters", compactCount(info.parameters), { title: `${info.parameters.toLocaleString()} parameters` }),
    fact("Steps per epoch", String(info.steps_per_epoch)),
  ];
  // Runs reported before these were kept have neither; one process needs no mention.
  if (info.world_size != null && info.world_size > 1) {
    items.push(fact("Processes", String(info.world_size), { title: "processes training together, one GPU each (batch_size is per process)" }));
  }
  if (info.effective_batch_size != null) {
    items.push(fact("Images per step", String(info.effective_batch_size), { title: "batch_size × processes × grad_accum_steps" }));
  }
  if (info.start_epoch > 1) items.push(fact("Resumed at", `epoch ${info.start_epoch}`));
  if (info.mask_encoding) {
    const { parts, text } = mapping(info.mask_encoding, names);
    items.push(fact("Mask value → class", parts, { wide: true, title: text }));
  }
  return items;
}

function showWarnings(box, run) {
  const warnings = (run.run_info && run.run_info.warnings) || [];
  box.hidden = !warnings.length;
  box.replaceChildren(...(warnings.length ? [
    el("h3", {}, warnings.length === 1 ? "Data warning" : `${warnings.length} data warnings`),
    el("ul", {}, warnings.map((warning) => el("li", {}, warning))),
  ] : []));
}

/**
 * Add the facts to `factsList` (after the run's own) and fill `warningsBox`.
 * @param {any} run
 * @param {HTMLElement} factsList
 * @param {HTMLElement} warningsBox
 */
export function show(run, factsList, warningsBox) {
  factsList.append(...facts(run));
  showWarnings(warningsBox, run);
}

