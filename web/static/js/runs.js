// Runs (home) page: a filtered, sorted, cursor-paged table kept live from the events stream.
//
// The filters (chips, text, and an expression of the filter language), the chosen columns
// (config keys, metrics, key:value tags), the sort and the grouping live in the URL query string
// (bookmarkable, under the names the list endpoint takes); the table loads one page at a time
// ("Load more" follows the API's cursor) and never re-fetches the whole list: status, metrics and
// run events patch the rows they concern, new runs appear on top (or in their group) and deleted
// runs disappear. A 422 of the server (a syntax error, a key no run has) is shown under the box
// it concerns.

import { byId, el, say } from "./dom.js";
import { api, messageOf } from "./http.js";
import { subscribe } from "./live.js";
import { plural } from "./pure/format.js";
import { mayChange, pageRights } from "./rights.js";
import {
  ROW_GROUPS, columnChoices, columnTitle, descendingFirst, groupKey, groupLabel, sortAfterClick, splitColumns,
} from "./pure/run_columns.js";
import { emptyFilters, hasFilters, matches, parseTags, readQuery, writeQuery } from "./pure/run_filters.js";
import * as rows from "./runs_rows.js";
import { ACTIVE } from "./runs_rows.js";
import { confirmAction, debounce, refreshTimes } from "./widgets.js";

const PAGE_SIZE = 50;
const MAX_COMPARED = 50;
const CANCELLABLE = new Set(["queued", "running"]);
const DESCENDING_FIRST = new Set(["best_val_iou", "last_val_iou", "epochs_done", "duration", "created_at"]);

const $ = byId;
const rights = pageRights();
const form = $("run-filters", HTMLFormElement);
const body = $("runs-body");
const message = $("runs-message");
const metricInput = $("filter-metric", HTMLInputElement);
const metricError = $("filter-metric-error");
const expressionInput = $("filter-expr", HTMLInputElement);
const expressionError = $("filter-expr-error");
const columnInput = $("column-add", HTMLInputElement);
const columnError = $("column-error");
const groupSelect = $("group-by", HTMLSelectElement);
/** Fixed cells of a row: select box, status, name, model, dataset, best, last, epochs, duration, created. */
const FIXED_CELLS = 10;

const state = {
  filters: emptyFilters(),
  sort: "-created_at",
  /** @type {string[]} chosen columns, as the list endpoint names them in its rows */
  columns: [],
  groupBy: "",
  /** @type {Map<string, number>} group value (groupKey) -> runs in it */
  groupCounts: new Map(),
  /** @type {string | null} groupKey of the last row's group */
  lastGroup: null,
  /** @type {string | null} */
  cursor: null,
  /** @type {Map<number, rows.RunRow>} */
  rows: new Map(),
  /** @type {Set<number>} */
  selected: new Set(),
  request: 0,
  /** @type {Map<number, any[]>} run id -> events that arrived while the run was being fetched */
  pending: new Map(),
};

// --- URL <-> state ---------------------------------------------------------------------------

function readUrl() {
  ({ filters: state.filters, sort: state.sort, columns: state.columns, groupBy: state.groupBy } =
    readQuery(new URLSearchParams(location.search)));
}

/** The query of the page: filters and view (what the list and the URL use). */
function pageParams() {
  return writeQuery(state.filters, state);
}

/** The CSV export takes the page's query, with `columns` always (empty: none chosen), so that
 * it holds exactly the table's columns in its order. */
function exportParams() {
  const params = pageParams();
  params.set("columns", state.columns.join(","));
  return params;
}

function writeUrl() {
  const query = pageParams().toString();
  const url = query ? `/?${query}` : "/";
  if (url !== location.pathname + location.search) history.pushState(null, "", url);
}

// --- the filter form -------------------------------------------------------------------------

function syncForm() {
  const f = state.filters;
  for (const box of form.querySelectorAll('input[name="status"]')) {
    /** @type {HTMLInputElement} */ (box).checked = f.status.includes(/** @type {HTMLInputElement} */ (box).value);
  }
  $("filter-q", HTMLInputElement).value = f.q;
  $("filter-tag", HTMLInputElement).value = f.tag.join(", ");
  metricInput.value = f.metric;
  expressionInput.value = f.filter;
  const extra = $("filter-extra");
  extra.replaceChildren();
  for (const key of ["dataset", "model"]) {
    if (!f[key]) continue;
    extra.append(
      el("span", { class: "chip" }, `${key}: ${f[key]} `,
        el("button", { type: "button", class: "chip-remove", "aria-label": `Remove the ${key} filter`,
          onclick: () => { state.filters[key] = ""; apply(); } }, "×")),
    );
  }
  extra.hidden = !extra.childElementCount;
  renderColumnHeaders();
  renderChosen();
  renderGroupChoices();
  updateSortHeaders();
}

function readForm() {
  const f = state.filters;
  f.status = [...form.querySelectorAll('input[name="status"]:checked')].map((box) => /** @type {HTMLInputElement} */ (box).value);
  f.q = $("filter-q", HTMLInputElement).value.trim();
  f.tag = parseTags($("filter-tag", HTMLInputElement).value);
  f.metric = metricInput.value.trim();
  f.filter = expressionInput.value.trim();
}

function apply() {
  writeUrl();
  syncForm();
  load(false);
}

/**
 * Show (or, with "", clear) a message under a field.
 * @param {HTMLInputElement} input
 * @param {HTMLElement} box
 * @param {string} text
 */
function showFieldError(input, box, text) {
  box.textContent = text;
  box.hidden = !text;
  if (text) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
}

function showMetricError(text) {
  showFieldError(metricInput, metricError, text);
}

function clearErrors() {
  showMetricError("");
  showFieldError(expressionInput, expressionError, "");
  showFieldError(columnInput, columnError, "");
}

/**
 * Show a 422 of the list under the box it concerns; false when it concerns none.
 * @param {any} error
 */
function showListError(error) {
  const details = Array.isArray(error.details) ? error.details : [];
  const fields = details.map((item) => item.field);
  const text = error.message;
  if (fields.includes("metric")) {
    showMetricError(text);
    metricInput.focus();
  } else if (fields.includes("filter")) {
    showFieldError(expressionInput, expressionError, text);
    expressionInput.focus();
  } else if (fields.some((field) => ["columns", "sort", "group_by"].includes(field))) {
    showFieldError(columnInput, columnError, text);
  } else {
    return false;
  }
  return true;
}

// --- loading pages ---------------------------------------------------------------------------

async function load(append) {
  const id = ++state.request;
  const params = pageParams();
  params.set("limit", String(PAGE_SIZE));
  if (append && state.cursor) params.set("cursor", state.cursor);
  $("loading").hidden = false;
  $("load-more", HTMLButtonElement).disabled = true;
  try {
    const page = await api(`/api/v1/runs?${params}`);
    if (id !== state.request) return;
    clearErrors();
    say(message, "");
    if (!append) clearRows();
    if (!append) adoptColumns(page);
    if (page.groups) state.groupCounts = new Map(page.groups.map((group) => [groupKey(group.value), group.count]));
    for (const run of page.items) {
      if (state.rows.has(run.id)) continue;
      appendGroupHeader(run);
      body.append(makeRow(run).tr);
    }
    state.cursor = page.next_cursor;
  } catch (error) {
    if (id !== state.request) return;
    if (!(error.status === 422 && showListError(error))) say(message, messageOf(error), "error");
    if (!append) clearRows();
  } finally {
    if (id === state.request) {
      $("loading").hidden = true;
      $("load-more", HTMLButtonElement).disabled = false;
      afterChange();
    }
  }
}

function clearRows() {
  state.rows.clear();
  body.replaceChildren();
  state.selected.clear();
  state.lastGroup = null;
}

// The list names columns canonically (`metrics.val/iou` is `metrics.val/iou.last`): the page
// takes its spelling so headers, cells and the sort agree.
function adoptColumns(page) {
  const canonical = (page.columns || []).slice(0, state.columns.length);
  if (canonical.join(",") === state.columns.join(",")) return;
  const renamed = new Map(state.columns.map((column, index) => [column, canonical[index]]));
  const sortField = state.sort.replace(/^-/, "");
  if (renamed.has(sortField)) state.sort = (state.sort.startsWith("-") ? "-" : "") + renamed.get(sortField);
  state.columns = canonical;
  if (page.group_by) state.groupBy = page.group_by;
  history.replaceState(null, "", `/?${pageParams()}`);
  renderColumnHeaders();
  renderChosen();
  renderGroupChoices();
  updateSortHeaders();
}

// --- columns and groups ----------------------------------------------------------------------

/** How many cells a row has (the colspan of group headers and the empty state). */
function cellCount() {
  return FIXED_CELLS + state.columns.length + 1;
}

function renderColumnHeaders() {
  for (const th of document.querySelectorAll("#runs-table th.chosen-col")) th.remove();
  const tagsHead = $("tags-head");
  for (const column of state.columns) {
    const { source, name } = columnTitle(column);
    const th = el("th", { class: "chosen-col", "data-sort": column, "data-column": column, "aria-sort": "none", scope: "col" },
      el("button", { type: "button", class: "sort-button", title: `Sort by ${column}` },
        el("span", { class: "source" }, source), name),
      el("button", { type: "button", class: "column-remove", "aria-label": `Remove the column ${column}`,
        onclick: () => removeColumn(column) }, "×"));
    th.querySelector(".sort-button").addEventListener("click", () => sortBy(column));
    tagsHead.before(th);
  }
}

function renderChosen() {
  $("chosen-columns").replaceChildren(...state.columns.map((column) => el("li", { class: "chip" }, `${column} `,
    el("button", { type: "button", class: "chip-remove", "aria-label": `Remove ${column}`, onclick: () => removeColumn(column) }, "×"))));
}

function renderGroupChoices() {
  const choices = [...ROW_GROUPS, ...state.columns.filter((column) => !column.startsWith("tag."))];
  if (state.groupBy && !choices.includes(state.groupBy)) choices.push(state.groupBy);
  groupSelect.replaceChildren(el("option", { value: "" }, "nothing"),
    ...choices.map((choice) => el("option", { value: choice }, choice)));
  groupSelect.value = state.groupBy;
}

/** @param {string} text one column or several, comma-separated */
function addColumns(text) {
  const added = splitColumns(text).filter((column) => !state.columns.includes(column));
  if (!added.length) return;
  state.columns = [...state.columns, ...added];
  columnInput.value = "";
  apply();
}

/** @param {string} column */
function removeColumn(column) {
  state.columns = state.columns.filter((item) => item !== column);
  if (state.sort.replace(/^-/, "") === column) state.sort = "-created_at";
  if (state.groupBy === column) state.groupBy = "";
  apply();
}

async function loadColumnChoices() {
  try {
    const keys = await api("/api/v1/runs/keys");
    $("column-choices").replaceChildren(...columnChoices(keys).flatMap(({ group, columns }) =>
      columns.map((column) => el("option", { value: column }, group))));
  } catch (error) {
    say(message, messageOf(error), "error");
  }
}

/** The value a row's group header shows (the list puts it among the row's columns). */
function groupValueOf(run) {
  return run.columns ? run.columns[state.groupBy] : null;
}

// A header row before the first row of each group.
function appendGroupHeader(run) {
  if (!state.groupBy) return;
  const value = groupValueOf(run);
  const key = groupKey(value);
  if (key === state.lastGroup) return;
  state.lastGroup = key;
  body.append(groupHeader(value, key));
}

function groupHeader(value, key) {
  return el("tr", { class: "group-row", "data-group": key },
    el("th", { colspan: String(cellCount()), scope: "rowgroup" }, groupLabel(state.groupBy, value, state.groupCounts.get(key))));
}

function afterChange() {
  const count = state.rows.size;
  $("load-more").hidden = !state.cursor;
  $("runs-count").textContent = count ? `${count}${state.cursor ? "+" : ""} run${count === 1 ? "" : "s"} shown` : "";
  $("export-csv", HTMLAnchorElement).href = `/api/v1/runs.csv?${exportParams()}`;
  renderEmpty(count === 0 && $("loading").hidden);
  updateKnownTags();
  updateToolbar();
}

function renderEmpty(show) {
  const box = $("runs-empty");
  box.hidden = !show;
  $("runs-table").classList.toggle("is-empty", show);
  if (!show) return;
  if (!metricError.hidden) {
    box.replaceChildren(el("p", {}, "Fix the metric condition above to list runs."));
  } else if (!expressionError.hidden) {
    box.replaceChildren(el("p", {}, "Fix the filter above to list runs."));
  } else if (!columnError.hidden) {
    box.replaceChildren(el("p", {}, "Fix the columns above to list runs."));
  } else if (hasFilters(state.filters)) {
    box.replaceChildren(
      el("p", {}, "No runs match these filters."),
      el("button", { type: "button", onclick: clearFilters }, "Clear filters"),
    );
  } else if (!rights.canWrite) {
    box.replaceChildren(
      el("p", { class: "empty-title" }, "No runs yet."),
      el("p", {}, "Members and admins queue runs; they show here as they train."));
  } else {
    box.replaceChildren(
      el("p", { class: "empty-title" }, "No runs yet."),
      el("p", {}, "Start one from the ", el("a", { href: "/runs/new" }, "New run"), " form. ",
        "The demo dataset is registered as ", el("code", {}, "demo"), " for a first try: ",
        el("a", { href: "/runs/new?dataset=demo" }, "train on the demo dataset"), ", or ",
        el("a", { href: "/datasets" }, "register your own dataset"), "."),
      el("p", { class: "muted" }, "Scripts can also log into segtrack over the REST API: see ",
        el("a", { href: "/docs" }, "the API docs"), "."),
    );
  }
}

function clearFilters() {
  state.filters = emptyFilters();
  clearErrors();
  apply();
}

function updateKnownTags() {
  const tags = new Set();
  for (const { run } of state.rows.values()) for (const tag of run.tags) tags.add(tag);
  $("known-tags").replaceChildren(...[...tags].sort().map((tag) => el("option", { value: tag })));
}

// --- rows ------------------------------------------------------------------------------------

function makeRow(run) {
  const box = el("input", { type: "checkbox", class: "row-select", "aria-label": `Select run ${run.id}` });
  box.checked = state.selected.has(run.id);
  box.addEventListener("change", () => {
    if (box.checked) state.selected.add(run.id); else state.selected.delete(run.id);
    updateToolbar();
  });
  const entry = rows.create(run, box, filterByTag, state.columns);
  state.rows.set(run.id, entry);
  return entry;
}

function removeRow(runId) {
  const entry = state.rows.get(runId);
  if (!entry) return;
  entry.tr.remove();
  state.rows.delete(runId);
  state.selected.delete(runId);
  afterChange();
}

function filterByTag(tag) {
  state.filters.tag = [tag];
  apply();
}

// --- live events -----------------------------------------------------------------------------

function onEvent(event) {
  const runId = event.run_id;
  if (runId === null || runId === undefined) return;
  if (state.pending.has(runId)) {
    state.pending.get(runId).push(event);
    return;
  }
  applyEvent(event, false);
}

function applyEvent(event, replay) {
  const runId = event.run_id;
  if (event.kind === "run") {
    if (event.action === "created") insertRun(runId);
    else if (event.action === "deleted") removeRow(runId);
    else if (event.action === "updated" && state.rows.has(runId)) refetchRow(runId);
    else if (event.action === "started" && state.rows.has(runId)) rows.applyStarted(state.rows.get(runId), event);
    return;
  }
  const entry = state.rows.get(runId);
  if (!entry) return;
  if (event.kind === "status") {
    if (rows.applyStatus(entry, event, replay)) updateToolbar();
  } else if (event.kind === "metrics") {
    // A large batch only sends a summary of what it wrote: read the run again.
    if (Array.isArray(event.points)) rows.applyPoints(entry, event.points);
    else refetchRow(runId);
  }
}

/** Whether only the server can tell if a run belongs in the list, or what its cells hold. */
function listedByServer() {
  return Boolean(state.filters.filter || state.columns.length || state.groupBy);
}

// The run as the list would show it (its columns), or null when the filters leave it out.
async function listedRun(runId) {
  const params = pageParams();
  const expression = state.filters.filter;
  params.set("filter", expression ? `id = ${runId} and (${expression})` : `id = ${runId}`);
  params.set("limit", "1");
  const page = await api(`/api/v1/runs?${params}`);
  return page.items[0] || null;
}

// Fetch one run, then apply the events that arrived meanwhile (those already reflected in the
// fetched state are skipped: a status event applies only on top of its `previous` status).
async function withFetched(runId, use, fetchRun = () => api(`/api/v1/runs/${runId}`)) {
  state.pending.set(runId, []);
  let run = null;
  try {
    run = await fetchRun();
  } catch (error) {
    if (error.status !== 404) say(message, messageOf(error), "error");
  }
  const waiting = state.pending.get(runId) || [];
  state.pending.delete(runId);
  if (run) use(run);
  for (const event of waiting) applyEvent(event, true);
}

function insertRun(runId) {
  if (state.rows.has(runId)) return;
  const byServer = listedByServer();
  withFetched(runId, (run) => {
    if (state.rows.has(runId) || !(byServer || matches(run, state.filters))) return;
    let header = null;
    if (state.groupBy) {
      const key = groupKey(groupValueOf(run));
      header = [...body.querySelectorAll("tr.group-row")].find((row) => /** @type {HTMLElement} */ (row).dataset.group === key);
      if (!header) { load(false); return; } // a new group: its place and count come from the list
      state.groupCounts.set(key, (state.groupCounts.get(key) || 0) + 1);
      header.replaceWith(header = groupHeader(groupValueOf(run), key));
    }
    const entry = makeRow(run);
    if (header) header.after(entry.tr); else body.prepend(entry.tr);
    entry.tr.classList.add("new-row");
    rows.flash(entry.tr);
    afterChange();
  }, byServer ? () => listedRun(runId) : undefined);
}

function refetchRow(runId) {
  withFetched(runId, (run) => {
    const entry = state.rows.get(runId);
    if (!entry) return;
    rows.replace(entry, run);
    afterChange();
  });
}

// --- sorting ---------------------------------------------------------------------------------

/** The column headers that sort the table (`data-sort` names the API's sort field). */
function sortHeaders() {
  return /** @type {NodeListOf<HTMLTableCellElement>} */ (document.querySelectorAll("th[data-sort]"));
}

function updateSortHeaders() {
  const field = state.sort.replace(/^-/, "");
  const descending = state.sort.startsWith("-");
  for (const th of sortHeaders()) {
    const sorted = th.dataset.sort === field;
    th.setAttribute("aria-sort", sorted ? (descending ? "descending" : "ascending") : "none");
  }
}

function sortBy(field) {
  state.sort = sortAfterClick(state.sort, field, DESCENDING_FIRST.has(field) || descendingFirst(field));
  apply();
}

// --- selection and bulk actions --------------------------------------------------------------

function selectedRuns() {
  return [...state.selected].map((id) => state.rows.get(id)).filter(Boolean).map((entry) => entry.run);
}

// Cancel and Delete act on the selected runs this user may change (members: their own).
function changeableRuns() {
  return selectedRuns().filter((run) => mayChange(rights, run.submitted_by));
}

function updateToolbar() {
  const runs = selectedRuns();
  const n = runs.length;
  $("selection-count").textContent = n ? `${n} run${n === 1 ? "" : "s"} selected` : "No runs selected";
  $("compare-selected", HTMLButtonElement).disabled = n < 2 || n > MAX_COMPARED;
  $("compare-selected").title = n > MAX_COMPARED ? `Compare takes at most ${MAX_COMPARED} runs` : `Select 2 to ${MAX_COMPARED} runs`;
  const changeable = changeableRuns();
  const others = n - changeable.length;
  const othersNote = others ? `${plural(others, "selected run")} submitted by others ${others === 1 ? "is" : "are"} left alone: a ${rights.role} changes only their own` : "";
  $("cancel-selected", HTMLButtonElement).disabled = !changeable.some((run) => CANCELLABLE.has(run.status));
  $("delete-selected", HTMLButtonElement).disabled = changeable.length === 0;
  $("cancel-selected").title = othersNote;
  $("delete-selected").title = othersNote;
  const all = $("select-all", HTMLInputElement);
  const shown = state.rows.size;
  all.checked = shown > 0 && n === shown;
  all.indeterminate = n > 0 && n < shown;
}

async function runEach(runs, action) {
  const failures = [];
  await Promise.all(runs.map(async (run) => {
    try {
      await action(run);
    } catch (error) {
      failures.push(`${run.name} (#${run.id}): ${error.message}`);
    }
  }));
  return failures;
}

async function cancelSelected() {
  const runs = changeableRuns().filter((run) => CANCELLABLE.has(run.status));
  const ok = await confirmAction({
    title: `Cancel ${plural(runs.length, "run")}?`,
    body: ["Queued runs end now; running runs stop within a few batches and keep their checkpoints.",
      runs.map((run) => run.name).join(", ")],
    confirmLabel: "Cancel runs",
    dismissLabel: "Keep them",
    danger: true,
  });
  if (!ok) return;
  const failures = await runEach(runs, (run) => api(`/api/v1/runs/${run.id}/cancel`, { method: "POST" }));
  report(`Cancelled ${plural(runs.length - failures.length, "run")}.`, failures);
}

async function deleteSelected() {
  const runs = changeableRuns();
  const running = runs.filter((run) => ACTIVE.has(run.status) && run.status !== "queued");
  const lines = ["This deletes their metrics, previews and checkpoints for good.",
    runs.map((run) => run.name).join(", ")];
  if (running.length) lines.push(`${plural(running.length, "run")} still running will be stopped.`);
  const ok = await confirmAction({
    title: `Delete ${plural(runs.length, "run")}?`, body: lines, confirmLabel: "Delete", danger: true,
  });
  if (!ok) return;
  const failures = await runEach(runs, async (run) => {
    const force = ACTIVE.has(run.status) && run.status !== "queued" ? "?force=true" : "";
    await api(`/api/v1/runs/${run.id}${force}`, { method: "DELETE" });
    removeRow(run.id);
  });
  report(`Deleted ${plural(runs.length - failures.length, "run")}.`, failures);
}

function report(done, failures) {
  if (failures.length) say(message, `${done} Failed: ${failures.join("; ")}`, "error");
  else say(message, done, "ok");
  updateToolbar();
}

// --- wiring ----------------------------------------------------------------------------------

form.addEventListener("submit", (event) => {
  event.preventDefault();
  readForm();
  apply();
});
for (const box of form.querySelectorAll('input[name="status"]')) {
  box.addEventListener("change", () => { readForm(); apply(); });
}
const typed = debounce(() => { readForm(); apply(); }, 350);
$("filter-q").addEventListener("input", typed);
$("filter-tag").addEventListener("change", () => { readForm(); apply(); });
metricInput.addEventListener("change", () => { readForm(); apply(); });
metricInput.addEventListener("input", () => showMetricError(""));
expressionInput.addEventListener("change", () => { readForm(); apply(); });
expressionInput.addEventListener("input", () => showFieldError(expressionInput, expressionError, ""));
columnInput.addEventListener("keydown", (event) => {
  if (event.key !== "Enter") return;
  event.preventDefault();
  addColumns(columnInput.value);
});
columnInput.addEventListener("input", () => showFieldError(columnInput, columnError, ""));
$("column-add-button").addEventListener("click", () => addColumns(columnInput.value));
groupSelect.addEventListener("change", () => { state.groupBy = groupSelect.value; apply(); });
$("filter-clear").addEventListener("click", clearFilters);
$("load-more").addEventListener("click", () => load(true));
for (const th of sortHeaders()) {
  th.querySelector("button").addEventListener("click", () => sortBy(th.dataset.sort));
}
$("select-all").addEventListener("change", (event) => {
  const on = /** @type {HTMLInputElement} */ (event.target).checked;
  for (const [id, entry] of state.rows) {
    /** @type {HTMLInputElement} */ (entry.tr.querySelector(".row-select")).checked = on;
    if (on) state.selected.add(id); else state.selected.delete(id);
  }
  updateToolbar();
});
$("compare-selected").addEventListener("click", () => {
  location.assign(`/compare?ids=${selectedRuns().map((run) => run.id).join(",")}`);
});
$("cancel-selected").addEventListener("click", cancelSelected);
$("delete-selected").addEventListener("click", deleteSelected);
window.addEventListener("popstate", () => { readUrl(); syncForm(); load(false); });

setInterval(() => {
  refreshTimes(body);
  for (const entry of state.rows.values()) rows.tick(entry);
}, 1000);

readUrl();
syncForm();
subscribe("/api/v1/events", onEvent);
load(false);
loadColumnChoices();
