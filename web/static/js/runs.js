// Runs (home) page: a filtered, sorted, cursor-paged table kept live from the events stream.
//
// The filters and the sort live in the URL query string (bookmarkable); the table loads one
// page at a time ("Load more" follows the API's cursor) and never re-fetches the whole list:
// status, metrics and run events patch the rows they concern, new runs appear on top and
// deleted runs disappear.
"use strict";

(() => {
  const { api, el } = segtrack;
  const ui = segtrackUi;
  const rows = segtrackRunRows;

  const PAGE_SIZE = 50;
  const STATUSES = ["queued", "running", "cancelling", "succeeded", "failed", "cancelled"];
  const ACTIVE = rows.ACTIVE;
  const CANCELLABLE = new Set(["queued", "running"]);
  const DESCENDING_FIRST = new Set(["best_val_iou", "last_val_iou", "epochs_done", "duration", "created_at"]);

  const $ = (id) => document.getElementById(id);
  const form = $("run-filters");
  const body = $("runs-body");
  const message = $("runs-message");
  const metricInput = $("filter-metric");
  const metricError = $("filter-metric-error");

  const state = {
    filters: emptyFilters(),
    sort: "-created_at",
    cursor: null,
    rows: new Map(), // run id -> {run, tr, durationBase, durationAt, lastIouStep}
    selected: new Set(),
    request: 0,
    pending: new Map(), // run id -> events that arrived while the run was being fetched
  };

  function emptyFilters() {
    return { status: [], tag: [], q: "", metric: "", dataset: "", model: "" };
  }

  // --- URL <-> state ---------------------------------------------------------------------------

  function readUrl() {
    const params = new URLSearchParams(location.search);
    state.filters = {
      status: params.getAll("status").filter((s) => STATUSES.includes(s)),
      tag: params.getAll("tag").filter(Boolean),
      q: params.get("q") || "",
      metric: params.get("metric") || "",
      dataset: params.get("dataset") || "",
      model: params.get("model") || "",
    };
    state.sort = params.get("sort") || "-created_at";
  }

  function filterParams() {
    const params = new URLSearchParams();
    const f = state.filters;
    for (const status of f.status) params.append("status", status);
    for (const tag of f.tag) params.append("tag", tag);
    for (const key of ["q", "metric", "dataset", "model"]) if (f[key]) params.set(key, f[key]);
    return params;
  }

  function pageParams() {
    const params = filterParams();
    if (state.sort !== "-created_at") params.set("sort", state.sort);
    return params;
  }

  function writeUrl() {
    const query = pageParams().toString();
    const url = query ? `/?${query}` : "/";
    if (url !== location.pathname + location.search) history.pushState(null, "", url);
  }

  function hasFilters() {
    const f = state.filters;
    return Boolean(f.status.length || f.tag.length || f.q || f.metric || f.dataset || f.model);
  }

  // --- the filter form -------------------------------------------------------------------------

  function syncForm() {
    const f = state.filters;
    for (const box of form.querySelectorAll('input[name="status"]')) box.checked = f.status.includes(box.value);
    $("filter-q").value = f.q;
    $("filter-tag").value = f.tag.join(", ");
    metricInput.value = f.metric;
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
    updateSortHeaders();
  }

  function readForm() {
    const f = state.filters;
    f.status = [...form.querySelectorAll('input[name="status"]:checked')].map((box) => box.value);
    f.q = $("filter-q").value.trim();
    f.tag = $("filter-tag").value.split(",").map((t) => t.trim()).filter(Boolean);
    f.metric = metricInput.value.trim();
  }

  function apply() {
    writeUrl();
    syncForm();
    load(false);
  }

  function showMetricError(text) {
    metricError.textContent = text;
    metricError.hidden = !text;
    if (text) metricInput.setAttribute("aria-invalid", "true");
    else metricInput.removeAttribute("aria-invalid");
  }

  // --- loading pages ---------------------------------------------------------------------------

  async function load(append) {
    const id = ++state.request;
    const params = pageParams();
    params.set("limit", String(PAGE_SIZE));
    if (append && state.cursor) params.set("cursor", state.cursor);
    $("loading").hidden = false;
    $("load-more").disabled = true;
    try {
      const page = await api(`/api/v1/runs?${params}`);
      if (id !== state.request) return;
      showMetricError("");
      ui.say(message, "");
      if (!append) clearRows();
      for (const run of page.items) if (!state.rows.has(run.id)) body.append(makeRow(run).tr);
      state.cursor = page.next_cursor;
    } catch (error) {
      if (id !== state.request) return;
      const details = Array.isArray(error.details) ? error.details : [];
      if (error.status === 422 && details.some((item) => item.field === "metric")) {
        showMetricError(error.message);
        metricInput.focus();
      } else {
        ui.say(message, error.message, "error");
      }
    } finally {
      if (id === state.request) {
        $("loading").hidden = true;
        $("load-more").disabled = false;
        afterChange();
      }
    }
  }

  function clearRows() {
    state.rows.clear();
    body.replaceChildren();
    state.selected.clear();
  }

  function afterChange() {
    const count = state.rows.size;
    $("load-more").hidden = !state.cursor;
    $("runs-count").textContent = count ? `${count}${state.cursor ? "+" : ""} run${count === 1 ? "" : "s"} shown` : "";
    $("export-csv").href = `/api/v1/runs.csv?${pageParams()}`;
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
    } else if (hasFilters()) {
      box.replaceChildren(
        el("p", {}, "No runs match these filters."),
        el("button", { type: "button", onclick: clearFilters }, "Clear filters"),
      );
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
    showMetricError("");
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
    const entry = rows.create(run, box, filterByTag);
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

  // Fetch one run, then apply the events that arrived meanwhile (those already reflected in the
  // fetched state are skipped: a status event applies only on top of its `previous` status).
  async function withFetched(runId, use) {
    state.pending.set(runId, []);
    let run = null;
    try {
      run = await api(`/api/v1/runs/${runId}`);
    } catch (error) {
      if (error.status !== 404) ui.say(message, error.message, "error");
    }
    const waiting = state.pending.get(runId) || [];
    state.pending.delete(runId);
    if (run) use(run);
    for (const event of waiting) applyEvent(event, true);
  }

  function insertRun(runId) {
    if (state.rows.has(runId)) return;
    withFetched(runId, (run) => {
      if (state.rows.has(runId) || !rows.matches(run, state.filters)) return;
      const entry = makeRow(run);
      body.prepend(entry.tr);
      entry.tr.classList.add("new-row");
      rows.flash(entry.tr);
      afterChange();
    });
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

  function updateSortHeaders() {
    const field = state.sort.replace(/^-/, "");
    const descending = state.sort.startsWith("-");
    for (const th of document.querySelectorAll("th[data-sort]")) {
      const sorted = th.dataset.sort === field;
      th.setAttribute("aria-sort", sorted ? (descending ? "descending" : "ascending") : "none");
    }
  }

  function sortBy(field) {
    const current = state.sort.replace(/^-/, "");
    if (current === field) state.sort = state.sort.startsWith("-") ? field : `-${field}`;
    else state.sort = DESCENDING_FIRST.has(field) ? `-${field}` : field;
    apply();
  }

  // --- selection and bulk actions --------------------------------------------------------------

  function selectedRuns() {
    return [...state.selected].map((id) => state.rows.get(id)).filter(Boolean).map((entry) => entry.run);
  }

  function updateToolbar() {
    const runs = selectedRuns();
    const n = runs.length;
    $("selection-count").textContent = n ? `${n} run${n === 1 ? "" : "s"} selected` : "No runs selected";
    $("compare-selected").disabled = n < 2 || n > 10;
    $("compare-selected").title = n > 10 ? "Compare takes at most 10 runs" : "Select 2 to 10 runs";
    $("cancel-selected").disabled = !runs.some((run) => CANCELLABLE.has(run.status));
    $("delete-selected").disabled = n === 0;
    const all = $("select-all");
    const shown = state.rows.size;
    all.checked = shown > 0 && n === shown;
    all.indeterminate = n > 0 && n < shown;
  }

  function plural(n, noun) {
    return `${n} ${noun}${n === 1 ? "" : "s"}`;
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
    const runs = selectedRuns().filter((run) => CANCELLABLE.has(run.status));
    const ok = await ui.confirmAction({
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
    const runs = selectedRuns();
    const running = runs.filter((run) => ACTIVE.has(run.status) && run.status !== "queued");
    const lines = ["This deletes their metrics, previews and checkpoints for good.",
      runs.map((run) => run.name).join(", ")];
    if (running.length) lines.push(`${plural(running.length, "run")} still running will be stopped.`);
    const ok = await ui.confirmAction({
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
    if (failures.length) ui.say(message, `${done} Failed: ${failures.join("; ")}`, "error");
    else ui.say(message, done, "ok");
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
  const typed = ui.debounce(() => { readForm(); apply(); }, 350);
  $("filter-q").addEventListener("input", typed);
  $("filter-tag").addEventListener("change", () => { readForm(); apply(); });
  metricInput.addEventListener("change", () => { readForm(); apply(); });
  metricInput.addEventListener("input", () => showMetricError(""));
  $("filter-clear").addEventListener("click", clearFilters);
  $("load-more").addEventListener("click", () => load(true));
  for (const th of document.querySelectorAll("th[data-sort]")) {
    th.querySelector("button").addEventListener("click", () => sortBy(th.dataset.sort));
  }
  $("select-all").addEventListener("change", (event) => {
    const on = event.target.checked;
    for (const [id, entry] of state.rows) {
      entry.tr.querySelector(".row-select").checked = on;
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
    ui.refreshTimes(body);
    for (const entry of state.rows.values()) rows.tick(entry);
  }, 1000);

  readUrl();
  syncForm();
  segtrack.subscribe("/api/v1/events", onEvent);
  load(false);
})();
