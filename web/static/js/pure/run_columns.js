// The runs table's chosen columns (`config.learning_rate`, `metrics.val/iou.best`, `tag.lr`):
// their list as the address and the API spell it, the choices the keys of the runs offer, how a
// header names one, which way a click sorts, where group headers go, and how live metric points
// change a metric column.

/** Aggregates of a metric column; `best` is the minimum of keys ending in `loss`, else the maximum. */
export const AGGREGATES = Object.freeze(["best", "last", "min", "max"]);

/** Fields the rows can be grouped by besides the chosen columns. */
export const ROW_GROUPS = Object.freeze(["status", "model", "dataset", "sweep"]);

/**
 * `a,b,c` as [a, b, c]: commas inside backticks (`` metrics.`a,b`.max ``) belong to the key;
 * blanks and repeats are dropped.
 * @param {string | null | undefined} text
 * @returns {string[]}
 */
export function splitColumns(text) {
  /** @type {string[]} */
  const columns = [];
  let current = "";
  let quoted = false;
  for (const char of text || "") {
    if (char === "`") quoted = !quoted;
    if (char === "," && !quoted) {
      columns.push(current.trim());
      current = "";
    } else {
      current += char;
    }
  }
  columns.push(current.trim());
  return [...new Set(columns.filter(Boolean))];
}

/**
 * A key as a column's part: bare when it is ASCII letters, digits, `_ - /`, else in backticks.
 * @param {string} key
 */
export function quoteKey(key) {
  return /^[A-Za-z0-9_\-/]+$/.test(key) ? key : `\`${key.replaceAll("`", "")}\``;
}

/**
 * The keys the runs have (GET /api/v1/runs/keys).
 * @typedef {object} RunKeys
 * @property {string[]} config
 * @property {string[]} params
 * @property {string[]} metrics
 * @property {string[]} tags keys of key:value tags (`lr` of `lr=1e-3`)
 */

/**
 * The columns the keys offer, in groups: config keys, parameters, each metric's best and last,
 * then key:value tags.
 * @param {RunKeys} keys
 * @returns {Array<{group: string, columns: string[]}>}
 */
export function columnChoices(keys) {
  return [
    { group: "Config", columns: keys.config.map((key) => `config.${quoteKey(key)}`) },
    { group: "Parameters", columns: keys.params.map((key) => `params.${quoteKey(key)}`) },
    {
      group: "Metrics",
      columns: keys.metrics.flatMap((key) => ["best", "last"].map((how) => `metrics.${quoteKey(key)}.${how}`)),
    },
    { group: "Tags", columns: keys.tags.map((key) => `tag.${quoteKey(key)}`) },
  ].filter((choice) => choice.columns.length);
}

/**
 * A column as a header shows it: its source and the rest (`config` · `learning_rate`).
 * @param {string} column
 * @returns {{source: string, name: string}}
 */
export function columnTitle(column) {
  const dot = column.indexOf(".");
  if (dot < 0) return { source: "", name: column };
  const source = column.slice(0, dot);
  return { source: source === "tag" ? "tag" : source, name: column.slice(dot + 1).replaceAll("`", "") };
}

/**
 * Whether a first click on the column sorts it descending (metrics: best first), or ascending.
 * @param {string} column
 */
export function descendingFirst(column) {
  return column.startsWith("metrics.") && !/loss(`)?(\.(best|last|min|max))?$/.test(column);
}

/**
 * The sort after a click on `column`'s header: the other direction when it is the sorted one,
 * else its first direction.
 * @param {string} current e.g. "-created_at"
 * @param {string} column
 * @param {boolean} firstDescending
 */
export function sortAfterClick(current, column, firstDescending) {
  if (current.replace(/^-/, "") === column) return current.startsWith("-") ? column : `-${column}`;
  return firstDescending ? `-${column}` : column;
}

/**
 * A value of a column as a cell shows it: numbers compact, text as it is, JSON for the rest.
 * @param {unknown} value
 */
export function cellText(value) {
  if (value === null || value === undefined) return "–";
  if (typeof value === "number") {
    if (Number.isInteger(value)) return String(value);
    const abs = Math.abs(value);
    const rounded = Number(value.toPrecision(4));
    return abs !== 0 && (abs < 1e-3 || abs >= 1e6) ? rounded.toExponential() : String(rounded);
  }
  if (typeof value === "string") return value;
  return JSON.stringify(value);
}

/**
 * A group value as a stable map key (1 and "1" stay apart).
 * @param {unknown} value
 */
export function groupKey(value) {
  return JSON.stringify(value === undefined ? null : value);
}

/**
 * The header of a group: `config.model = unet · 12 runs`.
 * @param {string} field
 * @param {unknown} value
 * @param {number | undefined} count
 */
export function groupLabel(field, value, count) {
  const shown = value === null || value === undefined ? "(none)" : cellText(value);
  const runs = count === undefined ? "" : ` · ${count} run${count === 1 ? "" : "s"}`;
  return `${field} = ${shown}${runs}`;
}

/**
 * A metric point of a live event.
 * @typedef {{key: string, step: number, value: number}} MetricPoint
 */

/**
 * Fold live metric points into a row's metric columns (a copy): `last` follows the newest step,
 * `min`/`max`/`best` the extremes. `lastSteps` (key -> newest step seen) is updated in place.
 * @param {Record<string, unknown>} values the row's column values
 * @param {string[]} columns the chosen columns, canonical (`metrics.val/iou.last`)
 * @param {MetricPoint[]} points
 * @param {Map<string, number>} lastSteps
 * @returns {Record<string, unknown>}
 */
export function foldMetricPoints(values, columns, points, lastSteps) {
  const next = { ...values };
  for (const column of columns) {
    const match = /^metrics\.(.+)\.(best|last|min|max)$/.exec(column);
    if (!match) continue;
    const key = match[1].replaceAll("`", "");
    const how = match[2] === "best" ? (key.endsWith("loss") ? "min" : "max") : match[2];
    for (const point of points) {
      if (point.key !== key) continue;
      const old = next[column];
      if (how === "last") {
        if (point.step >= (lastSteps.get(key) ?? -Infinity)) next[column] = point.value;
      } else if (typeof old !== "number" || (how === "min" ? point.value < old : point.value > old)) {
        next[column] = point.value;
      }
    }
  }
  for (const point of points) {
    if (point.step > (lastSteps.get(point.key) ?? -Infinity)) lastSteps.set(point.key, point.step);
  }
  return next;
}

/**
 * The value of a run's key:value tag `key=value` (the first in sorted order, as the list
 * endpoint's `tag.<key>` column reads it), or null.
 * @param {string[]} tags
 * @param {string} key
 * @returns {string | null}
 */
export function tagValue(tags, key) {
  const prefix = `${key}=`;
  const found = [...tags].sort().find((tag) => tag.startsWith(prefix));
  return found === undefined ? null : found.slice(prefix.length);
}

/**
 * The keys of the key:value tags among these runs' tags, sorted.
 * @param {string[][]} tagLists
 */
export function tagKeys(tagLists) {
  const keys = new Set();
  for (const tags of tagLists) for (const tag of tags) if (tag.indexOf("=") > 0) keys.add(tag.slice(0, tag.indexOf("=")));
  return [...keys].sort();
}
