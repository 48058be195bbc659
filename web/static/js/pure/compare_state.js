// The compare page's state that is not the page: which runs the address asks for, the address
// of a view, how runs fall into groups by a config key, the steps a zoomed chart asks for, and
// whether the runs' data (datasets, class sets) compare at all.

/**
 * The run ids of `?ids=3,1,2`: positive integers, first occurrence kept, in the order given.
 * @param {string | null} text
 * @returns {number[]}
 */
export function parseIds(text) {
  /** @type {number[]} */
  const seen = [];
  for (const part of (text || "").split(",")) {
    const id = Number(part.trim());
    if (part.trim() && Number.isInteger(id) && id > 0 && !seen.includes(id)) seen.push(id);
  }
  return seen;
}

/** How far a chart's plot width may stray from the points asked for before asking again. */
export const WIDTH_SLACK = 0.1;

/**
 * Whether a chart `width` pixels wide should ask for its series again, having asked for
 * `asked` points per run: when it is more than WIDTH_SLACK wider (detail to gain) or narrower
 * (points to spare); the few pixels a first guess or a scrollbar miss by are not worth it.
 * @param {number} asked
 * @param {number} width
 */
export function widthChanged(asked, width) {
  return Math.abs(width - asked) > asked * WIDTH_SLACK;
}

/**
 * @typedef {object} CompareView
 * @property {number[]} ids
 * @property {string[]} keys metrics charted
 * @property {string} groupKey config key runs are grouped by ("" for none)
 * @property {string} groupMode "value" (runs with the same value of the key) or "others" (runs
 *   the same in every other differing key)
 * @property {number | null} epoch
 * @property {string} previewMode
 * @property {string[]} [tagColumns] keys of key:value tags shown as columns
 */

/**
 * The query string of a compare view (defaults left out).
 * @param {CompareView} view
 */
export function compareQuery(view) {
  const next = new URLSearchParams({ ids: view.ids.join(",") });
  next.set("keys", view.keys.join(","));
  if (view.groupKey) { next.set("group", view.groupKey); next.set("mode", view.groupMode); }
  if (view.epoch !== null) next.set("epoch", String(view.epoch));
  if (view.previewMode !== "prediction") next.set("view", view.previewMode);
  if (view.tagColumns && view.tagColumns.length) next.set("tags", view.tagColumns.join(","));
  return next;
}

/**
 * A config value as the page prints it: strings as they are, the rest as compact JSON.
 * @param {unknown} value
 */
function shown(value) {
  if (value === null || value === undefined) return "null";
  return typeof value === "string" ? value : JSON.stringify(value);
}

/**
 * Runs in groups, in order of first appearance. Mode "value": one group per value of `key`;
 * mode "others": one group per combination of the other `differing` keys (the runs that differ
 * only in `key`, so the band shows what `key` does).
 * @template R
 * @param {R[]} runs
 * @param {Array<Record<string, unknown>>} configs the runs' configs, in the same order
 * @param {string} key
 * @param {string} mode "value" or "others"
 * @param {string[]} differing the keys whose values differ across the runs
 * @returns {Array<{label: string, runs: R[]}>}
 */
export function groupRuns(runs, configs, key, mode, differing) {
  /** @type {Map<string, R[]>} */
  const byLabel = new Map();
  runs.forEach((run, index) => {
    const config = configs[index];
    let label;
    if (mode === "value") {
      label = `${key}=${shown(config[key] ?? null)}`;
    } else {
      const others = differing.filter((item) => item !== key);
      label = others.map((item) => `${item}=${shown(config[item] ?? null)}`).join(", ") || "all runs";
    }
    const members = byLabel.get(label) || [];
    members.push(run);
    byLabel.set(label, members);
  });
  return [...byLabel].map(([label, members]) => ({ label, runs: members }));
}

/**
 * The fields of a run (GET /api/v1/runs/{id}) the data warnings look at.
 * @typedef {object} RunData
 * @property {number} id
 * @property {number | null} [dataset_id]
 * @property {string | null} [dataset_name]
 * @property {string | null} [dataset_path]
 * @property {string[] | null} [class_names]
 * @property {Record<string, unknown> | null} [config]
 */

/**
 * Runs by a label, in order of first appearance, as "label (#1, #2)".
 * @param {Array<{id: number, label: string}>} entries
 */
function listed(entries) {
  /** @type {Map<string, number[]>} */
  const byLabel = new Map();
  for (const { id, label } of entries) byLabel.set(label, [...(byLabel.get(label) || []), id]);
  return [...byLabel].map(([label, ids]) => `${label} (${ids.map((id) => `#${id}`).join(", ")})`).join("; ");
}

/**
 * Warnings when the runs were trained on different datasets or class sets (their scores do not
 * compare); runs that say nothing of one are left out of that comparison.
 * @param {RunData[]} runs
 * @returns {string[]}
 */
export function dataWarnings(runs) {
  const warnings = [];
  const datasets = runs.flatMap((run) => {
    const configured = run.config && typeof run.config.dataset === "string" ? run.config.dataset : null;
    const label = run.dataset_name || run.dataset_path || configured;
    if (!label) return [];
    return [{ id: run.id, label, key: run.dataset_id !== null && run.dataset_id !== undefined ? `id:${run.dataset_id}` : `name:${label}` }];
  });
  if (new Set(datasets.map((entry) => entry.key)).size > 1) {
    warnings.push(`These runs used different datasets: ${listed(datasets)}. Their scores do not compare directly.`);
  }
  const classSets = runs.flatMap((run) => {
    if (run.class_names && run.class_names.length) return [{ id: run.id, label: run.class_names.join(", ") }];
    const count = run.config ? run.config.num_classes : null;
    return typeof count === "number" ? [{ id: run.id, label: `${count} classes` }] : [];
  });
  if (new Set(classSets.map((entry) => entry.label)).size > 1) {
    warnings.push(`These runs used different class sets: ${listed(classSets)}. Per-class and mean scores cover different classes.`);
  }
  return warnings;
}
