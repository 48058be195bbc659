// A registered dataset in a few words: its size, split, classes, layout and image sizes, and
// how many errors and warnings its inspection found.

/**
 * The stored inspection report's fields these summaries read.
 * @typedef {object} InspectionSummary
 * @property {number} [num_train]
 * @property {number} [num_val]
 * @property {number} [in_channels]
 * @property {{min_height: number, min_width: number, max_height: number, max_width: number, all_equal: boolean}} [image_sizes]
 * @property {string[]} [errors]
 * @property {string[]} [warnings]
 */

/**
 * Short facts of a dataset from its stored inspection report.
 * @param {{num_pairs: number, num_classes: number, layout: string}} dataset
 * @param {InspectionSummary} [report]
 * @returns {string[]}
 */
export function datasetFacts(dataset, report = {}) {
  const facts = [`${dataset.num_pairs} pairs`];
  if (report.num_train !== undefined) facts.push(`${report.num_train} train / ${report.num_val} val`);
  facts.push(`${dataset.num_classes} classes`, dataset.layout);
  const sizes = report.image_sizes;
  if (sizes && sizes.min_height) {
    facts.push(sizes.all_equal ? `${sizes.min_height}×${sizes.min_width} px`
      : `${sizes.min_height}×${sizes.min_width} to ${sizes.max_height}×${sizes.max_width} px`);
  }
  if (report.in_channels) facts.push(`${report.in_channels} channel${report.in_channels === 1 ? "" : "s"}`);
  return facts;
}

/**
 * "no warnings", "2 warnings" or "1 error, 2 warnings", and the badge's kind: "ok", "warn", "bad".
 * @param {InspectionSummary} [report]
 * @returns {{text: string, kind: "ok" | "warn" | "bad"}}
 */
export function reportSummary(report = {}) {
  const errors = (report.errors || []).length;
  const warnings = (report.warnings || []).length;
  const parts = [];
  if (errors) parts.push(`${errors} error${errors === 1 ? "" : "s"}`);
  if (warnings) parts.push(`${warnings} warning${warnings === 1 ? "" : "s"}`);
  return { text: parts.join(", ") || "no warnings", kind: errors ? "bad" : warnings ? "warn" : "ok" };
}
