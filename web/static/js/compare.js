// The compare page (/compare?ids=1,2,3): overlaid curves with one colour per run (or one mean ±
// std band per group), metrics at a chosen epoch and at each run's best, the same validation
// images' predictions side by side, and the config keys that differ. System series (`sys/...`)
// compare like any metric, against the time since each run started.
"use strict";

(() => {
  const { api, el, formatNumber } = segtrack;
  const $ = (id) => document.getElementById(id);
  const MIN_RUNS = 2;
  const MAX_RUNS = 10;
  const RUN_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  const DEFAULT_KEYS = ["val/iou", "val/loss", "train/loss", "lr"];
  const TABLE_KEYS = ["val/iou", "val/dice", "val/miou", "val/pixel_acc", "val/loss", "train/loss"];
  const STEP_ONLY_KEYS = ["train/loss_step"];
  const SYSTEM_PREFIX = "sys/";
  const isSystem = (key) => key.startsWith(SYSTEM_PREFIX);

  const params = new URLSearchParams(window.location.search);
  const state = {
    runs: [], configs: [], differing: [], keys: [],
    groupKey: params.get("group") || "", groupMode: params.get("mode") || "value",
    epoch: null, previewMode: params.get("view") || "prediction",
  };
  const charts = new Map();
  const seriesByKey = new Map();
  const previewLists = new Map();
  const previewEpochs = new Map();
  let palette = null;
  let view = null;
  let tiles = [];
  let epochTimer = 0;
  let previewToken = 0;

  function showMessage(text) {
    const message = $("page-message");
    message.textContent = text;
    message.hidden = !text;
  }

  function reportError(error) {
    showMessage(error && error.message ? error.message : String(error));
  }

  function colorOf(run) {
    return RUN_COLORS[state.runs.indexOf(run) % RUN_COLORS.length];
  }

  function ids() {
    const seen = [];
    for (const part of (params.get("ids") || "").split(",")) {
      const id = Number(part.trim());
      if (part.trim() && Number.isInteger(id) && id > 0 && !seen.includes(id)) seen.push(id);
    }
    return seen;
  }

  function saveUrl() {
    const next = new URLSearchParams({ ids: state.runs.map((run) => run.id).join(",") });
    next.set("keys", state.keys.join(","));
    if (state.groupKey) { next.set("group", state.groupKey); next.set("mode", state.groupMode); }
    if (state.epoch !== null) next.set("epoch", String(state.epoch));
    if (state.previewMode !== "prediction") next.set("view", state.previewMode);
    window.history.replaceState(null, "", `/compare?${next}`);
  }

  // --- runs legend and config diff ------------------------------------------------------------

  function renderLegend() {
    $("run-legend").replaceChildren(...state.runs.map((run) => el("li", { "data-run-id": run.id },
      el("span", { class: "run-swatch", style: `background: ${colorOf(run)}` }),
      el("a", { href: `/runs/${run.id}` }, run.name),
      el("span", { class: "muted" }, `#${run.id}`),
      el("span", { class: `status status-${run.status}` }, run.status),
      el("span", { class: "muted" }, run.best_val_iou !== null ? `best val/iou ${formatNumber(run.best_val_iou, 4)} (epoch ${run.best_epoch})` : ""))));
  }

  function renderDiff() {
    const showAll = $("show-all-keys").checked;
    const allKeys = [...new Set(state.configs.flatMap((config) => Object.keys(config)))].sort();
    const keys = showAll ? allKeys : state.differing;
    const head = el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Key"),
      ...state.runs.map((run) => el("th", { scope: "col" },
        el("span", { class: "run-swatch", style: `background: ${colorOf(run)}` }), " ", run.name))));
    const rows = keys.map((key) => el("tr", { class: state.differing.includes(key) ? "differs" : "", "data-key": key },
      el("th", { scope: "row" }, key),
      ...state.configs.map((config) => el("td", {}, key in config ? segtrackConfig.show(config[key]) : "–"))));
    const empty = el("tr", {}, el("td", { colspan: String(state.runs.length + 1), class: "muted" },
      "The runs have the same config.", showAll ? "" : " Tick “Show all keys” to see it."));
    $("config-diff").replaceChildren(head, el("tbody", {}, ...(rows.length ? rows : [empty])));
  }

  // --- curves ---------------------------------------------------------------------------------

  function groups() {
    const key = state.groupKey;
    const byLabel = new Map();
    state.runs.forEach((run, index) => {
      const config = state.configs[index];
      let label;
      if (state.groupMode === "value") {
        label = `${key}=${segtrackConfig.show(config[key] ?? null)}`;
      } else {
        const others = state.differing.filter((item) => item !== key);
        label = others.map((item) => `${item}=${segtrackConfig.show(config[item] ?? null)}`).join(", ") || "all runs";
      }
      if (!byLabel.has(label)) byLabel.set(label, []);
      byLabel.get(label).push(run);
    });
    return [...byLabel].map(([label, runs]) => ({ label, runs }));
  }

  function draw(key) {
    const chart = charts.get(key);
    const items = seriesByKey.get(key);
    if (!chart || !items) return;
    const byRun = new Map(items.map((item) => [item.run_id, item.series[key]]));
    if (!state.groupKey) {
      chart.setBands([]);
      chart.setSeries(state.runs.map((run) => ({ key: `run-${run.id}`, label: run.name, color: colorOf(run) })));
      for (const run of state.runs) {
        const series = byRun.get(run.id);
        chart.setPoints(`run-${run.id}`, series ? series.step : [], series ? series.value : [], series || {});
      }
      return;
    }
    const definitions = [];
    const bands = [];
    const computed = groups().map((group, index) => {
      const color = RUN_COLORS[index % RUN_COLORS.length];
      const members = group.runs.map((run) => byRun.get(run.id)).filter(Boolean);
      const stats = segtrackSeriesMath.meanStd(members.map((series) => ({ steps: series.step, values: series.value })));
      const id = `group-${index}`;
      definitions.push(
        { key: `${id}-mean`, label: `${group.label} (n=${group.runs.length})`, color, spread: [`${id}-hi`, `${id}-lo`] },
        { key: `${id}-hi`, label: "+1 std", color, faint: true },
        { key: `${id}-lo`, label: "−1 std", color, faint: true });
      bands.push([`${id}-hi`, `${id}-lo`, color]);
      return { id, stats, downsampled: members.some((series) => series.downsampled) };
    });
    chart.setSeries(definitions);
    chart.setBands(bands);
    for (const { id, stats, downsampled } of computed) {
      chart.setPoints(`${id}-mean`, stats.steps, stats.mean, { downsampled });
      chart.setPoints(`${id}-hi`, stats.steps, stats.mean.map((mean, i) => mean + stats.std[i]));
      chart.setPoints(`${id}-lo`, stats.steps, stats.mean.map((mean, i) => mean - stats.std[i]));
    }
  }

  async function loadKey(key) {
    const chart = charts.get(key);
    const query = new URLSearchParams({
      run_ids: state.runs.map((run) => run.id).join(","), keys: key, max_points: String(chart.pixelWidth()),
    });
    const body = await api(`/api/v1/metrics/series?${query}`);
    seriesByKey.set(key, body.items);
    draw(key);
  }

  function addChart(key) {
    if (charts.has(key)) return;
    const slot = el("div", { class: "chart-slot", "data-key": key });
    $("compare-charts").append(slot);
    const system = isSystem(key);
    const xLabel = system ? "time since start"
      : state.runs.some((run) => run.epochs_done > 0) && !key.endsWith("_step") ? "epoch" : "step";
    // Charts on the same x axis share the cursor and the zoomed range; epoch 5 is not step 5,
    // nor 5 seconds.
    const chart = segtrackCharts.create(slot, {
      id: `cmp:${key}`, title: key, xLabel, xTime: system,
      syncKey: `compare-${system ? "time" : xLabel}`, emptyText: "No run has this metric",
      onWidthChange: () => { if (chart.isDownsampled()) loadKey(key).catch(reportError); },
    });
    charts.set(key, chart);
    loadKey(key).catch(reportError);
  }

  function removeChart(key) {
    const chart = charts.get(key);
    if (!chart) return;
    chart.destroy();
    charts.delete(key);
    seriesByKey.delete(key);
    const slot = document.querySelector(`#compare-charts .chart-slot[data-key="${CSS.escape(key)}"]`);
    if (slot) slot.remove();
  }

  function renderPicker(allKeys) {
    const picker = $("metric-picker");
    const rest = allKeys.filter((key) => !DEFAULT_KEYS.includes(key));
    const ordered = [...DEFAULT_KEYS.filter((key) => allKeys.includes(key)),
      ...rest.filter((key) => !isSystem(key)), ...rest.filter(isSystem)];
    ordered.forEach((key, index) => {
      const input = el("input", { type: "checkbox", id: `metric-${index}`, value: key, checked: state.keys.includes(key) });
      input.addEventListener("change", () => {
        if (input.checked) { state.keys.push(key); addChart(key); } else { state.keys = state.keys.filter((item) => item !== key); removeChart(key); }
        saveUrl();
        refreshTables().catch(reportError);
      });
      picker.append(el("label", { for: `metric-${index}` }, input, ` ${key}`));
    });
  }

  function renderGrouping() {
    const select = $("group-key");
    for (const key of state.differing) select.append(el("option", { value: key }, key));
    if (!state.differing.includes(state.groupKey)) state.groupKey = "";
    select.value = state.groupKey;
    $("group-mode").value = state.groupMode === "others" ? "others" : "value";
    const update = () => {
      state.groupKey = select.value;
      state.groupMode = $("group-mode").value;
      $("group-mode").disabled = !state.groupKey;
      const note = state.groupKey ? `${groups().length} groups: ${groups().map((group) => `${group.label} (${group.runs.length})`).join("; ")}` : "";
      $("group-note").textContent = note;
      for (const key of charts.keys()) draw(key);
      saveUrl();
    };
    select.addEventListener("change", update);
    $("group-mode").addEventListener("change", update);
    update();
  }

  // --- metrics at an epoch --------------------------------------------------------------------

  function tableKeys() {
    const union = new Set(state.runs.flatMap((run) => Object.keys(run.metrics)));
    // Values at an epoch: system series have none (the server leaves them out).
    return [...new Set([...TABLE_KEYS, ...state.keys])]
      .filter((key) => union.has(key) && !STEP_ONLY_KEYS.includes(key) && !isSystem(key));
  }

  function renderValues(table, items, keys) {
    const better = (key) => (key.endsWith("loss") ? Math.min : Math.max);
    const bestOf = Object.fromEntries(keys.map((key) => {
      const values = items.map((item) => item.values[key]).filter((value) => value !== undefined);
      return [key, values.length > 1 ? better(key)(...values) : null];
    }));
    table.replaceChildren(
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Run"), el("th", { scope: "col", class: "num" }, "Epoch"),
        ...keys.map((key) => el("th", { scope: "col", class: "num" }, key)))),
      el("tbody", {}, ...items.map((item) => {
        const run = state.runs.find((candidate) => candidate.id === item.run_id);
        return el("tr", { "data-run-id": item.run_id },
          el("th", { scope: "row" }, el("span", { class: "run-swatch", style: `background: ${colorOf(run)}` }), " ", run.name),
          el("td", { class: "num" }, item.epoch === null ? "–" : String(item.epoch)),
          ...keys.map((key) => {
            const value = item.values[key];
            const best = value !== undefined && value === bestOf[key];
            return el("td", { class: best ? "num best-value" : "num" }, value === undefined ? "–" : segtrackCharts.formatValue(value));
          }));
      })));
  }

  async function refreshTables() {
    const keys = tableKeys();
    const runIds = state.runs.map((run) => run.id).join(",");
    const query = (epoch) => api(`/api/v1/metrics/at?run_ids=${runIds}&epoch=${epoch}&keys=${encodeURIComponent(keys.join(","))}`);
    const [atEpoch, atBest] = await Promise.all([state.epoch === null ? null : query(state.epoch), query("best")]);
    if (atEpoch) renderValues($("at-epoch"), atEpoch.items, keys);
    renderValues($("at-best"), atBest.items, keys);
  }

  // --- predictions side by side ---------------------------------------------------------------

  async function epochsWithPreviews(run) {
    if (!previewEpochs.has(run.id)) previewEpochs.set(run.id, api(`/api/v1/runs/${run.id}/previews`).then((body) => body.epochs));
    return previewEpochs.get(run.id);
  }

  // The run's preview epoch for the chosen one: that epoch, else the latest before it, else the
  // first after it (runs keep previews at different epochs, or stopped earlier).
  function nearestEpoch(epochs, wanted) {
    if (!epochs.length) return null;
    if (epochs.includes(wanted)) return wanted;
    const before = epochs.filter((epoch) => epoch < wanted);
    return before.length ? before[before.length - 1] : epochs[0];
  }

  function previewsAt(run, epoch) {
    const key = `${run.id}@${epoch}`;
    if (!previewLists.has(key)) previewLists.set(key, api(`/api/v1/runs/${run.id}/previews?epoch=${epoch}`));
    return previewLists.get(key);
  }

  async function refreshPreviews() {
    const token = ++previewToken;
    const wanted = state.epoch;
    const perRun = await Promise.all(state.runs.map(async (run) => {
      const epoch = nearestEpoch(await epochsWithPreviews(run), wanted ?? Infinity);
      if (epoch === null) return { run, epoch: null, samples: new Map() };
      const body = await previewsAt(run, epoch);
      return { run, epoch, samples: new Map(body.samples.map((sample) => [sample.name, sample])) };
    }));
    if (token !== previewToken) return;
    const names = [];
    for (const entry of perRun) for (const name of entry.samples.keys()) if (!names.includes(name)) names.push(name);
    const container = $("compare-samples");
    for (const id of ["preview-controls", "class-legend", "error-legend"]) $(id).hidden = !names.length;
    if (!names.length) {
      tiles = [];
      container.replaceChildren(el("p", { class: "muted" }, "None of these runs has mask previews."));
      return;
    }
    const columns = 2 + perRun.length;
    const style = `grid-template-columns: repeat(${columns}, minmax(0, 1fr)); max-width: ${columns * 230}px`;
    const header = el("div", { class: "sample-grid sample-head", style },
      el("strong", {}, "Image"), el("strong", {}, "Truth"),
      ...perRun.map(({ run, epoch }) => el("strong", { "data-run-id": run.id },
        el("span", { class: "run-swatch", style: `background: ${colorOf(run)}` }), " ", run.name,
        el("span", { class: "muted" }, epoch === null ? " (no previews)" : epoch === wanted ? "" : ` (epoch ${epoch})`))));
    const nextTiles = [];
    const rows = names.map((name) => {
      const first = perRun.find((entry) => entry.samples.has(name)).samples.get(name);
      const cells = [segtrackMasks.tile("image", first, view, name), segtrackMasks.tile("truth", first, view, "truth")];
      nextTiles.push(...cells);
      const runCells = perRun.map(({ run, samples }) => {
        const sample = samples.get(name);
        if (!sample) return el("div", { class: "missing-tile" }, `${run.name} has no preview of ${name}`);
        const tile = segtrackMasks.tile(state.previewMode, sample, view, run.name);
        tile.element.dataset.runId = String(run.id);
        nextTiles.push(tile);
        return tile.element;
      });
      return el("div", { class: "sample-grid", style, "data-sample": name }, ...cells.map((tile) => tile.element), ...runCells);
    });
    await Promise.all(nextTiles.map((tile) => tile.ready));
    if (token !== previewToken) return;
    tiles = nextTiles;
    container.dataset.epoch = String(wanted);
    container.replaceChildren(header, ...rows);
  }

  // --- epoch control --------------------------------------------------------------------------

  function setEpoch(epoch, { immediate = false } = {}) {
    state.epoch = epoch;
    $("compare-epoch").value = String(epoch);
    $("compare-epoch-slider").value = String(epoch);
    saveUrl();
    clearTimeout(epochTimer);
    epochTimer = setTimeout(() => {
      refreshTables().catch(reportError);
      refreshPreviews().catch(reportError);
    }, immediate ? 0 : 250);
  }

  function bindEpoch() {
    const lastEpochs = state.runs.map((run) => run.epochs_done || 0);
    const top = Math.max(1, ...lastEpochs);
    const slider = $("compare-epoch-slider");
    slider.max = String(top);
    $("compare-epoch").max = String(top);
    const fromUrl = Number(params.get("epoch"));
    const shared = Math.min(...lastEpochs) || top;
    const read = (value) => Math.max(0, Math.min(top, Math.round(Number(value) || 0)));
    $("compare-epoch").addEventListener("change", () => setEpoch(read($("compare-epoch").value)));
    slider.addEventListener("input", () => setEpoch(read(slider.value)));
    setEpoch(params.has("epoch") && Number.isFinite(fromUrl) ? read(fromUrl) : shared, { immediate: true });
  }

  function bindPreviews() {
    view = { palette, opacity: Number($("overlay-opacity").value) };
    $("class-legend").replaceChildren(segtrackMasks.legend(palette));
    $("error-legend").replaceChildren(el("h3", {}, "Error view"), segtrackMasks.errorLegend());
    palette.onChange(() => { for (const tile of tiles) tile.repaint(); });
    $("overlay-opacity").addEventListener("input", () => {
      view.opacity = Number($("overlay-opacity").value);
      $("opacity-value").textContent = view.opacity.toFixed(2);
      for (const tile of tiles) if (tile.kind === "overlay") tile.repaint();
    });
    const mode = $("preview-mode");
    mode.value = state.previewMode;
    mode.addEventListener("change", () => {
      state.previewMode = mode.value;
      saveUrl();
      refreshPreviews().catch(reportError);
    });
  }

  async function start() {
    let wanted = ids();
    if (wanted.length > MAX_RUNS) {
      showMessage(`Comparing the first ${MAX_RUNS} of the ${wanted.length} runs asked for.`);
      wanted = wanted.slice(0, MAX_RUNS);
    }
    if (wanted.length < MIN_RUNS) {
      showMessage("Choose 2 to 10 runs to compare: tick them on the runs page, or open /compare?ids=1,2,3.");
      return;
    }
    const results = await Promise.allSettled(wanted.map((id) => api(`/api/v1/runs/${id}`)));
    state.runs = results.filter((result) => result.status === "fulfilled").map((result) => result.value);
    const missing = wanted.filter((_, index) => results[index].status === "rejected");
    if (missing.length) showMessage(`Not found: run ${missing.join(", ")}.`);
    if (state.runs.length < MIN_RUNS) return;
    state.configs = state.runs.map((run) => run.config || run.params || {});
    state.differing = segtrackConfig.differingKeys(state.configs);
    const allKeys = [...new Set(state.runs.flatMap((run) => Object.keys(run.metrics)))].sort();
    const fromUrl = (params.get("keys") || "").split(",").filter((key) => allKeys.includes(key));
    state.keys = fromUrl.length ? fromUrl : DEFAULT_KEYS.filter((key) => allKeys.includes(key));

    renderLegend();
    renderDiff();
    $("show-all-keys").addEventListener("change", renderDiff);
    renderPicker(allKeys);
    for (const key of state.keys) addChart(key);
    renderGrouping();
    const withDataset = state.runs.find((run) => run.dataset_id !== null) || state.runs[0];
    try {
      palette = await segtrackMasks.paletteForRun(withDataset);
    } catch (error) {
      reportError(error);
      palette = new segtrackMasks.Palette({ names: [], colors: [], storageKey: "segtrack:class-colors:compare" });
    }
    bindPreviews();
    bindEpoch();
    window.segtrackComparePage = { state, charts, groups };
    document.getElementById("compare-page").dataset.ready = "1";
  }

  start().catch(reportError);
})();
