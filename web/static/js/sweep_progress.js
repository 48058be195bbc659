// A sweep's progress as a bar of done / pruned / failed / running / queued runs out of max_runs,
// with its legend: the sweeps list shows a small one per sweep, a sweep's page a wide one.

import { el } from "./dom.js";
import { PROGRESS_PARTS, progress } from "./pure/sweep_results.js";

/**
 * The bar's parts, each a share of max_runs wide.
 * @param {import("./pure/sweep_results.js").SweepCounts} counts
 * @param {number} maxRuns
 * @returns {HTMLElement[]}
 */
export function progressParts(counts, maxRuns) {
  return progress(counts, maxRuns).parts.filter((part) => part.count > 0).map((part) =>
    el("span", { class: `part-${part.part}`, style: `width:${(part.share * 100).toFixed(3)}%`, title: `${part.count} ${part.part}`, "data-part": part.part }));
}

/**
 * "7 / 20 ended" with the bar's description for screen readers.
 * @param {import("./pure/sweep_results.js").SweepCounts} counts
 * @param {number} maxRuns
 */
export function progressText(counts, maxRuns) {
  const { ended } = progress(counts, maxRuns);
  const parts = PROGRESS_PARTS.map((part) => `${counts[part] || 0} ${part}`).join(", ");
  return { short: `${ended} / ${maxRuns} ended`, long: `${ended} of ${maxRuns} runs ended: ${parts}` };
}

/**
 * The small bar of a sweeps-list row, with its text.
 * @param {import("./pure/sweep_results.js").SweepCounts} counts
 * @param {number} maxRuns
 */
export function miniProgress(counts, maxRuns) {
  const text = progressText(counts, maxRuns);
  return el("span", { class: "mini-progress-cell", title: text.long },
    el("span", { class: "sweep-progress mini-progress", role: "img", "aria-label": text.long }, progressParts(counts, maxRuns)),
    text.short);
}

/**
 * The legend of the wide bar: a swatch and a count per part.
 * @param {import("./pure/sweep_results.js").SweepCounts} counts
 */
export function progressLegend(counts) {
  return PROGRESS_PARTS.map((part) => el("li", { "data-part": part },
    el("span", { class: `swatch part-${part}`, "aria-hidden": "true" }), `${part} `, el("strong", {}, String(counts[part] || 0))));
}
