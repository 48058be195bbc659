// One row of the runs table: rendering a run summary and its chosen columns, and folding live
// status and metric events into it (durations keep ticking while a run is active).

import { el } from "./dom.js";
import { formatDuration, formatNumber } from "./pure/format.js";
import { cellText, foldMetricPoints } from "./pure/run_columns.js";
import { statusBadge, timeAgo } from "./widgets.js";

/** Statuses of runs that are not over yet. */
export const ACTIVE = new Set(["queued", "running", "cancelling"]);

/**
 * A row of the table: the run as last known, its <tr>, and what its live duration counts from.
 * @typedef {object} RunRow
 * @property {any} run
 * @property {HTMLTableRowElement} tr
 * @property {(tag: string) => void} onTag
 * @property {number | null} durationBase seconds trained when last read
 * @property {number} durationAt performance.now() then
 * @property {number} lastIouStep step of the newest val/iou point
 * @property {string[]} columns the chosen columns, as the list's rows name them
 * @property {Map<string, number>} lastSteps metric key -> step of its newest point seen live
 */

/**
 * A row for `run`. `selectBox` fills the first cell; `onTag(tag)` runs when a tag chip is clicked;
 * `columns` are the chosen columns (their values in `run.columns`), shown before the tags.
 * @param {any} run
 * @param {HTMLElement} selectBox
 * @param {(tag: string) => void} onTag
 * @param {string[]} [columns]
 * @returns {RunRow}
 */
export function create(run, selectBox, onTag, columns = []) {
  const tr = el("tr", { "data-run-id": run.id }, el("td", { class: "select-col" }, selectBox));
  const entry = { run, tr, onTag, durationBase: null, durationAt: 0, lastIouStep: -1, columns, lastSteps: new Map() };
  replace(entry, run);
  return entry;
}

/**
 * Take a freshly fetched summary (or full run) of the same id.
 * @param {RunRow} entry
 * @param {any} run
 */
export function replace(entry, run) {
  // A run read on its own has no column values: keep those of the list.
  if (!run.columns) run.columns = entry.run.columns || {};
  entry.run = run;
  entry.durationBase = run.duration_s;
  entry.durationAt = performance.now();
  if (run.metrics && run.metrics["val/iou"]) entry.lastIouStep = run.metrics["val/iou"].last_step;
  fill(entry);
}

/** @param {RunRow} entry */
function fill(entry) {
  const { run, tr } = entry;
  tr.dataset.status = run.status;
  const cells = [
    el("td", { class: "status-cell" }, statusBadge(run.status)),
    nameCell(run),
    modelCell(run),
    el("td", { class: "truncate" }, run.dataset_name || "–"),
    el("td", { class: "num", "data-col": "best" }, formatNumber(run.best_val_iou)),
    el("td", { class: "num", "data-col": "last" }, formatNumber(run.last_val_iou)),
    epochsCell(run),
    el("td", { class: "num", "data-col": "duration" }, formatDuration(duration(entry))),
    el("td", {}, timeAgo(run.created_at)),
    ...entry.columns.map((column) => {
      const value = run.columns ? run.columns[column] : null;
      return el("td", { class: typeof value === "number" ? "num" : "", "data-column": column }, cellText(value));
    }),
    el("td", { class: "tags" }, run.tags.map((tag) =>
      el("button", { type: "button", class: "tag", title: `Show runs tagged ${tag}`, onclick: () => entry.onTag(tag) }, tag))),
  ];
  tr.replaceChildren(tr.firstElementChild, ...cells);
}

// The model; a run trained elsewhere says where (host) and how, the model beside it when known.
function modelCell(run) {
  if (!run.external) return el("td", {}, run.model || "–");
  const how = { cli: "segtrack train", script: "script" }[run.origin] || "external";
  const where = run.host ? ` on ${run.host}` : "";
  return el("td", { title: `trained outside the queue${where}` },
    run.model ? `${run.model} ` : "", el("span", { class: "muted" }, `${how}${where}`));
}

function nameCell(run) {
  const cell = el("td", { class: "name-cell" },
    el("a", { href: `/runs/${run.id}`, class: "run-link" }, run.name),
    el("span", { class: "muted run-id" }, ` #${run.id}`));
  if (run.failure_reason) cell.append(el("div", { class: "failure", title: run.failure_reason }, run.failure_reason));
  return cell;
}

function epochsCell(run) {
  const planned = run.epochs_planned;
  const share = planned ? Math.min(1, run.epochs_done / planned) : 0;
  return el("td", { class: "num epochs", "data-col": "epochs" },
    el("span", {}, planned ? `${run.epochs_done} / ${planned}` : String(run.epochs_done)),
    planned ? el("span", { class: "bar", "aria-hidden": "true" },
      el("span", { style: `width:${(share * 100).toFixed(1)}%` })) : null);
}

// Seconds trained: the server's figure, plus the time since it was read while the run is active.
function duration(entry) {
  const { run } = entry;
  if (entry.durationBase === null || entry.durationBase === undefined) return null;
  if (!ACTIVE.has(run.status) || !run.started_at) return entry.durationBase;
  return entry.durationBase + (performance.now() - entry.durationAt) / 1000;
}

/**
 * Called every second: only active rows change.
 * @param {RunRow} entry
 */
export function tick(entry) {
  if (!ACTIVE.has(entry.run.status)) return;
  const cell = entry.tr.querySelector('[data-col="duration"]');
  if (cell) cell.textContent = formatDuration(duration(entry));
}

/** @param {HTMLElement} tr */
export function flash(tr) {
  tr.classList.remove("flash");
  void tr.offsetWidth; // restart the animation
  tr.classList.add("flash");
}

// Fold a `status` event in. A replayed event (one that may predate the fetched state) applies
// only on top of its `previous` status; returns whether it applied.
/**
 * @param {RunRow} entry
 * @param {any} event
 * @param {boolean} replay
 */
export function applyStatus(entry, event, replay) {
  const { run } = entry;
  if (replay && run.status !== event.previous) return false;
  const elapsed = duration(entry);
  run.status = event.status;
  run.failure_reason = event.failure_reason || (event.status === "queued" ? null : run.failure_reason);
  if (event.worker) run.worker = event.worker;
  if (event.device) run.device = event.device;
  if (event.status === "running" && event.previous === "queued") {
    run.started_at = run.started_at || event.created_at;
    entry.durationBase = elapsed === null ? 0 : elapsed;
    entry.durationAt = performance.now();
    run.finished_at = null;
  } else if (!ACTIVE.has(event.status)) {
    run.finished_at = event.created_at;
    entry.durationBase = elapsed;
  }
  fill(entry);
  flash(entry.tr);
  return true;
}

/**
 * Fold a `metrics` event's points in: epochs done, best and last val/iou, metric columns.
 * @param {RunRow} entry
 * @param {Array<{key: string, step: number, epoch?: number | null, value: number}>} points
 */
export function applyPoints(entry, points) {
  const { run } = entry;
  for (const point of points) {
    const epoch = point.epoch === null || point.epoch === undefined ? null : point.epoch;
    if (epoch !== null && epoch > run.epochs_done) run.epochs_done = epoch;
    if (point.key !== "val/iou") continue;
    if (run.best_val_iou === null || point.value > run.best_val_iou) run.best_val_iou = point.value;
    if (point.step >= entry.lastIouStep) {
      entry.lastIouStep = point.step;
      run.last_val_iou = point.value;
    }
  }
  if (entry.columns.length) run.columns = foldMetricPoints(run.columns || {}, entry.columns, points, entry.lastSteps);
  fill(entry);
}

/**
 * A `run` event of action `started`: the epochs planned and the device.
 * @param {RunRow} entry
 * @param {any} event
 */
export function applyStarted(entry, event) {
  if (event.epochs_planned) entry.run.epochs_planned = event.epochs_planned;
  if (event.device) entry.run.device = event.device;
  fill(entry);
}

