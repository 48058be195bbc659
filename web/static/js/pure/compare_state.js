// The compare page's state that is not the page: which runs the address asks for, the address
// of a view, how runs fall into groups by a config key, and which preview epoch stands for the
// chosen one in each run.

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

/**
 * @typedef {object} CompareView
 * @property {number[]} ids
 * @property {string[]} keys metrics charted
 * @property {string} groupKey config key runs are grouped by ("" for none)
 * @property {string} groupMode "value" (runs with the same value of the key) or "others" (runs
 *   the same in every other differing key)
 * @property {number | null} epoch
 * @property {string} previewMode
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
 * A run's preview epoch for the chosen one: that epoch, else the latest before it, else the
 * first after it (runs keep previews at different epochs, or stopped earlier); null for none.
 * @param {number[]} epochs ascending
 * @param {number} wanted
 */
export function nearestEpoch(epochs, wanted) {
  if (!epochs.length) return null;
  if (epochs.includes(wanted)) return wanted;
  const before = epochs.filter((epoch) => epoch < wanted);
  return before.length ? before[before.length - 1] : epochs[0];
}
