// The runs list's filters and view: read from and written to the page's query string
// (bookmarkable; the same names the list endpoint takes), and matched against a run the list did
// not load (a new one) the way the list endpoint would.

import { splitColumns } from "./run_columns.js";

/** Statuses the status filter offers, in the order the form shows them. */
export const STATUSES = Object.freeze(["queued", "running", "cancelling", "succeeded", "failed", "cancelled", "pruned"]);
export const DEFAULT_SORT = "-created_at";

/**
 * @typedef {object} RunFilters
 * @property {string[]} status runs in any of these statuses (none: all)
 * @property {string[]} tag runs with every one of these tags
 * @property {string} q text in the name, notes, dataset or tags, or the run id
 * @property {string} metric a condition on a metric's last value, e.g. "val/iou > 0.5"
 * @property {string} dataset registered name, path or id
 * @property {string} model
 * @property {string} filter an expression of the filter language, e.g.
 *   "config.learning_rate < 1e-3 or tag.lr = 1e-3" (only the server evaluates it)
 */

/** @typedef {"q" | "metric" | "dataset" | "model" | "filter"} TextFilter */
/** @type {TextFilter[]} */
const TEXT_FILTERS = ["q", "metric", "dataset", "model", "filter"];

/** @returns {RunFilters} */
export function emptyFilters() {
  return { status: [], tag: [], q: "", metric: "", dataset: "", model: "", filter: "" };
}

/**
 * What the list shows besides its filters.
 * @typedef {object} RunView
 * @property {string} sort a field or column, "-" first for descending
 * @property {string[]} columns chosen columns, e.g. "config.learning_rate"
 * @property {string} groupBy the field rows are grouped by ("" for none)
 */

/**
 * Whether any filter is set.
 * @param {RunFilters} filters
 */
export function hasFilters(filters) {
  return Boolean(filters.status.length || filters.tag.length || TEXT_FILTERS.some((key) => filters[key]));
}

/**
 * The filters and view of a query string; unknown statuses and empty tags are dropped.
 * @param {URLSearchParams} params
 * @returns {{filters: RunFilters} & RunView}
 */
export function readQuery(params) {
  return {
    filters: {
      status: params.getAll("status").filter((status) => STATUSES.includes(status)),
      tag: params.getAll("tag").filter(Boolean),
      q: params.get("q") || "",
      metric: params.get("metric") || "",
      dataset: params.get("dataset") || "",
      model: params.get("model") || "",
      filter: params.get("filter") || "",
    },
    sort: params.get("sort") || DEFAULT_SORT,
    columns: splitColumns(params.get("columns")),
    groupBy: params.get("group_by") || "",
  };
}

/**
 * The query string of filters and view (defaults left out); readQuery reads it back.
 * @param {RunFilters} filters
 * @param {Partial<RunView>} [view]
 */
export function writeQuery(filters, view = {}) {
  const { sort = DEFAULT_SORT, columns = [], groupBy = "" } = view;
  const params = new URLSearchParams();
  for (const status of filters.status) params.append("status", status);
  for (const tag of filters.tag) params.append("tag", tag);
  for (const key of TEXT_FILTERS) if (filters[key]) params.set(key, filters[key]);
  if (sort !== DEFAULT_SORT) params.set("sort", sort);
  if (columns.length) params.set("columns", columns.join(","));
  if (groupBy) params.set("group_by", groupBy);
  return params;
}

/**
 * Comma-separated tags as a list, blanks dropped.
 * @param {string} text
 */
export function parseTags(text) {
  return text.split(",").map((tag) => tag.trim()).filter(Boolean);
}

const CONDITION = /^\s*([^<>=!]+?)\s*(>=|<=|!=|>|<|=)\s*(\S+)\s*$/;

/** @typedef {">" | ">=" | "<" | "<=" | "=" | "!="} Comparison */

/**
 * "val/iou >= 0.5" as {key, op, value}; null when it is not such a condition.
 * @param {string} text
 * @returns {{key: string, op: Comparison, value: number} | null}
 */
export function parseCondition(text) {
  const match = CONDITION.exec(text);
  if (!match) return null;
  return { key: match[1], op: /** @type {Comparison} */ (match[2]), value: Number(match[3]) };
}

/**
 * @param {number} left
 * @param {Comparison} op
 * @param {number} right
 */
function compare(left, op, right) {
  switch (op) {
    case ">": return left > right;
    case ">=": return left >= right;
    case "<": return left < right;
    case "<=": return left <= right;
    case "=": return left === right;
    default: return left !== right;
  }
}

/**
 * The fields of a run (GET /api/v1/runs/{id}) the filters look at.
 * @typedef {object} FilteredRun
 * @property {number} id
 * @property {string} name
 * @property {string} status
 * @property {string[]} tags
 * @property {string | null} [notes]
 * @property {string | null} [model]
 * @property {string | null} [dataset_name]
 * @property {string | null} [dataset_path]
 * @property {number | null} [dataset_id]
 * @property {Record<string, {last_value: number}>} [metrics]
 */

/**
 * Whether a full run passes `filters` as the list endpoint would; a filter-language expression
 * is the server's to evaluate (ask the list for the run instead).
 * @param {FilteredRun} run
 * @param {RunFilters} filters
 */
export function matches(run, filters) {
  const f = filters;
  if (f.status.length && !f.status.includes(run.status)) return false;
  if (!f.tag.every((tag) => run.tags.includes(tag))) return false;
  if (f.model && run.model !== f.model) return false;
  if (f.dataset && ![run.dataset_name, run.dataset_path, String(run.dataset_id)].includes(f.dataset)) return false;
  if (f.q) {
    const needle = f.q.toLowerCase();
    const haystack = [run.name, run.notes || "", run.dataset_name || "", ...run.tags].map((s) => s.toLowerCase());
    if (!haystack.some((text) => text.includes(needle)) && String(run.id) !== f.q) return false;
  }
  if (f.metric) {
    const condition = parseCondition(f.metric);
    const summary = condition && run.metrics && run.metrics[condition.key];
    if (!condition || !summary) return false;
    if (!compare(summary.last_value, condition.op, condition.value)) return false;
  }
  return true;
}
