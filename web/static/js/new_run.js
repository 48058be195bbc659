// New-run page: run settings, a dataset picker over the registered datasets (with their stored
// inspection summaries) and the config form generated from TrainConfig's schema. `?clone=<id>`
// pre-fills everything from that run, `?fine_tune=<id>` too with `init_from: run:<id>` (its best
// weights), `?dataset=<name>` picks a dataset, `?sweep=1` opens it in sweep mode (with
// `?clone=<id>`: a sweep around the numbers that run set). Submitting POSTs /api/v1/runs, or in
// sweep mode /api/v1/sweeps (the swept fields as `parameters`, the rest as the base `config`):
// problems come back as {field, message} and are shown next to their fields; a created run or
// sweep opens its page.

import * as configForms from "./config_form.js";
import { byId, el, say } from "./dom.js";
import * as forms from "./forms.js";
import { api } from "./http.js";
import { datasetFacts } from "./pure/dataset_facts.js";
import { apiProblems } from "./pure/form_values.js";
import { neighbourhood, specSettings } from "./pure/sweep_spec.js";
import { METHODS, attachSwitches, countText, readParameters } from "./sweep_fields.js";
import { classList, reportBadge, swatch } from "./widgets.js";

const $ = byId;
const form = $("new-run-form", HTMLFormElement);
const status = $("form-status");
const submitButton = $("submit-run", HTMLButtonElement);
const defaultQueue = form.dataset.defaultQueue || "default";
const roots = form.dataset.datasetRoots || "";
const OTHER = "__path__";

/** @type {Map<string, forms.Field>} */
const runFields = new Map();
/** @type {configForms.ConfigForm | null} */
let configForm = null;
/** @type {Array<{dataset: any, report: any}>} the registered datasets with their inspection reports */
let datasets = [];
/** @type {Map<string, import("./sweep_fields.js").SweepSwitch>} */
let switches = new Map();
/** @type {Map<string, forms.Field>} the sweep's own settings, built when sweep mode is first on */
const sweepFields = new Map();
const sweepMode = $("sweep-mode", HTMLInputElement);
const errors = new forms.ErrorDisplay($("form-errors"), resolveField);

// --- run settings ----------------------------------------------------------------------------

function buildRunFields() {
  const notesControl = el("textarea", { id: "run-notes", rows: 2, maxlength: 100000 });
  const controllers = [
    forms.textField({ name: "name", id: "run-name", label: "Name", nullable: true,
      help: "Shown in lists and charts; empty: <model>-<dataset>", attributes: { maxlength: 200, placeholder: "e.g. unet lr 3e-4" } }),
    forms.listField({ name: "tags", id: "run-tags", label: "Tags", itemType: "string",
      help: "Comma-separated, e.g. baseline, lr-sweep; the runs list filters by them", placeholder: "baseline, lr-sweep" }),
    forms.numberField({ name: "priority", id: "run-priority", label: "Priority", integer: true, min: 0, max: 9,
      help: "0 to 9; queued runs with a higher priority start first" }),
    forms.textField({ name: "queue", id: "run-queue", label: "Queue", nullable: true,
      help: `Worker queue to send the run to; empty: ${defaultQueue}`, attributes: { placeholder: defaultQueue } }),
    forms.numberField({ name: "max_retries", id: "run-max-retries", label: "Retries", integer: true, min: 0, max: 10,
      help: "Times a run whose worker died is queued again to resume from its last checkpoint" }),
    forms.field({ name: "notes", id: "run-notes", label: "Notes", control: notesControl, extraClass: "field-wide",
      help: "Free text kept with the run",
      get: () => ({ value: notesControl.value }),
      set: (value) => { notesControl.value = value || ""; } }),
  ];
  for (const controller of controllers) {
    runFields.set(controller.name, controller);
    $("run-fields").append(controller.element);
  }
  setRunValues({ name: null, tags: [], priority: 0, queue: null, max_retries: 0, notes: "" });
}

function setRunValues(values) {
  for (const [name, value] of Object.entries(values)) runFields.get(name).set(value);
}

// --- the dataset picker ----------------------------------------------------------------------

function datasetPicker(name, prop) {
  const options = el("div", { class: "dataset-options", role: "radiogroup", "aria-labelledby": "cfg-dataset-label",
    "aria-describedby": "cfg-dataset-help cfg-dataset-error" });
  const pathInput = el("input", { id: "cfg-dataset-path", type: "text", autocomplete: "off",
    placeholder: "/path/to/dataset, or a folder name under a dataset root", "aria-describedby": "cfg-dataset-path-help cfg-dataset-error" });
  const pathBox = el("div", { class: "dataset-path", hidden: true },
    el("label", { for: "cfg-dataset-path" }, "Dataset path"),
    pathInput,
    el("small", { class: "help", id: "cfg-dataset-path-help" },
      `Absolute, or relative to a dataset root (${roots || "see SEGTRACK_DATASET_ROOTS"}); it is inspected when you submit`));
  const details = el("div", { class: "dataset-details", "aria-live": "polite" });
  const errorEl = el("div", { class: "field-error", id: "cfg-dataset-error", hidden: true });

  const radios = [];
  const addOption = (value, content) => {
    const radio = el("input", { type: "radio", name: "dataset-choice", value, id: `dataset-choice-${radios.length}` });
    radio.addEventListener("change", () => update());
    radios.push(radio);
    options.append(el("label", { class: "dataset-option", for: radio.id }, radio, el("span", { class: "option-body" }, content)));
  };
  for (const { dataset, report } of datasets) {
    addOption(dataset.name, [
      el("span", { class: "option-title" }, dataset.name, " ", reportBadge(report)),
      el("span", { class: "option-meta" }, datasetFacts(dataset, report).join(" · ")),
      el("span", { class: "option-path muted" }, dataset.path),
      el("span", { class: "option-classes" }, dataset.class_colors.map((color, i) => swatch(color, dataset.class_names[i]))),
    ]);
  }
  addOption(OTHER, [
    el("span", { class: "option-title" }, "Another folder on the server"),
    el("span", { class: "option-meta muted" }, datasets.length ? "not registered: inspected when the run is submitted" : "no dataset is registered yet"),
  ]);

  const selected = () => radios.find((radio) => radio.checked) || null;

  function update() {
    const choice = selected();
    pathBox.hidden = !choice || choice.value !== OTHER;
    const entry = choice && datasets.find(({ dataset }) => dataset.name === choice.value);
    details.replaceChildren();
    showDatasetHints(entry || null);
    if (!entry) return;
    const { dataset, report } = entry;
    details.append(el("div", { class: "dataset-classes" }, el("strong", {}, "Classes "), classList(dataset.class_names, dataset.class_colors)));
    for (const [title, items, kind] of [["Errors", report.errors || [], "error-text"], ["Warnings", report.warnings || [], "warn-text"]]) {
      if (items.length) details.append(el("div", { class: kind }, el("strong", {}, `${title}: `), el("ul", {}, items.map((item) => el("li", {}, item)))));
    }
  }

  const element = el("div", { class: "field field-wide", "data-field": name },
    el("span", { class: "label", id: "cfg-dataset-label" }, "Dataset"),
    options, pathBox, details,
    el("small", { class: "help", id: "cfg-dataset-help" }, `${prop.description}. Registered datasets show their last inspection; `,
      el("a", { href: "/datasets" }, "register one"), " to reuse it by name."),
    errorEl);

  return {
    name, element, errorEl, control: options,
    get focusTarget() {
      const choice = selected();
      if (choice && choice.value === OTHER) return pathInput;
      return choice || radios[0];
    },
    get: () => {
      const choice = selected();
      if (!choice) return { problem: "pick a dataset, or type the folder of another one" };
      if (choice.value !== OTHER) return { value: choice.value };
      const path = pathInput.value.trim();
      return path ? { value: path } : { problem: "type the dataset's folder on the server" };
    },
    set: (value) => {
      const entry = value && datasets.find(({ dataset }) => dataset.name === value || dataset.path === value);
      for (const radio of radios) radio.checked = entry ? radio.value === entry.dataset.name : radio.value === OTHER && Boolean(value);
      pathInput.value = entry || !value ? "" : value;
      update();
    },
  };
}

// Say in the data fields what the picked dataset would infer.
function showDatasetHints(entry) {
  if (!configForm) return;
  const hints = {
    num_classes: entry ? `${entry.dataset.num_classes} (from the dataset)` : "not set",
    in_channels: entry && entry.report.in_channels ? `${entry.report.in_channels} (from the dataset)` : "not set",
    class_names: entry ? entry.dataset.class_names.join(", ") : "comma-separated",
  };
  for (const [name, hint] of Object.entries(hints)) {
    const controller = configForm.fields.get(name);
    if (controller) controller.control.setAttribute("placeholder", hint);
  }
}

// --- errors ----------------------------------------------------------------------------------

function resolveField(field) {
  const path = field.replace(/^body\./, "");
  const swept = path.match(/^parameters\.([^.]+)/);
  if (swept && configForm && configForm.fields.has(swept[1])) {
    const controller = configForm.fields.get(swept[1]);
    const sweep = switches.get(swept[1]);
    return sweep ? { ...controller, focusTarget: sweep.focusTarget } : controller;
  }
  if (sweepMode.checked) {
    const own = specField(path);
    if (own && sweepFields.has(own)) return sweepFields.get(own);
  }
  const head = path.replace(/^config\./, "").split(".")[0];
  return runFields.get(head) || sweepFields.get(head) || (configForm && configForm.fields.get(head)) || null;
}

// A problem of the whole config ("class_names has 3 entries but ...") goes to the field it
// starts with.
function placeProblems(items) {
  return items.map((item) => {
    if (item.field !== "config" && item.field !== "body" && item.field !== "parameters") return item;
    const first = (item.message.match(/^[a-z_]+/) || [""])[0];
    return configForm && configForm.fields.has(first) ? { field: first, message: item.message } : item;
  });
}

// --- sweep mode ------------------------------------------------------------------------------

/** The sweep setting a spec path's problem belongs to (`metric.target` -> target). */
function specField(path) {
  if (path.startsWith("early_terminate.") && path !== "early_terminate.type") return `et_${path.slice("early_terminate.".length)}`;
  return {
    metric: "metric", "metric.name": "metric", "metric.goal": "goal", "metric.target": "target",
    early_terminate: "early_terminate", "early_terminate.type": "early_terminate",
    seed: "sweep_seed", method: "method", max_runs: "max_runs", run_cap: "max_runs", parallel: "parallel",
  }[path] || null;
}

/** The early-termination options each type takes (W&B's names), as sweep settings. */
const EARLY_TERMINATE_OPTIONS = {
  hyperband: ["et_min_iter", "et_eta", "et_max_iter"],
  median: ["et_min_iter", "et_n_startup_trials"],
};

function buildSweepFields() {
  if (sweepFields.size) return;
  const monitor = configForm.fields.get("monitor");
  const reading = monitor ? monitor.get() : { value: "val/iou" };
  const controllers = [
    forms.selectField({ name: "method", id: "sweep-method", label: "Method", options: [...METHODS],
      help: "grid: every combination once; random: draws from the ranges; bayes: Optuna's TPE, drawing near the best so far" }),
    forms.textField({ name: "metric", id: "sweep-metric", label: "Metric", help: "The key each run is scored by (its best value)",
      attributes: { list: "cfg-monitor-options" } }),
    forms.selectField({ name: "goal", id: "sweep-goal", label: "Goal", options: ["maximize", "minimize"] }),
    forms.numberField({ name: "target", id: "sweep-target", label: "Target", nullable: true, placeholder: "none",
      help: "Finish the sweep once a run's best value reaches this (its queued runs are cancelled)" }),
    forms.numberField({ name: "max_runs", id: "sweep-max-runs", label: "Max runs", integer: true, min: 1, max: 10000, nullable: true,
      placeholder: "grid: its size; else 20", help: "How many runs the sweep makes at most; raise it later on the sweep's page" }),
    forms.numberField({ name: "parallel", id: "sweep-parallel", label: "Parallel", integer: true, min: 1, max: 256,
      help: "At most this many runs queued or training at once" }),
    forms.numberField({ name: "sweep_seed", id: "sweep-setting-seed", label: "Sweep seed", integer: true, min: 0, max: 4294967295, nullable: true,
      placeholder: "drawn at random", help: "Seeds the sampler: the same seed draws the same configs again" }),
    forms.selectField({ name: "early_terminate", id: "sweep-early-terminate", label: "Early termination", options: ["none", "hyperband", "median"],
      help: "Stop hopeless runs at an epoch's end from their epoch metric: hyperband compares runs at epochs min_iter·eta^k; median stops a run below the finished runs' median" }),
    forms.numberField({ name: "et_min_iter", id: "sweep-et-min-iter", label: "min_iter", integer: true, min: 1, max: 10000, nullable: true,
      placeholder: "1", help: "The first epoch runs are judged at" }),
    forms.numberField({ name: "et_eta", id: "sweep-et-eta", label: "eta", integer: true, min: 2, max: 10000, nullable: true,
      placeholder: "3", help: "Keep the best 1/eta of the runs at each rung" }),
    forms.numberField({ name: "et_max_iter", id: "sweep-et-max-iter", label: "max_iter", integer: true, min: 1, max: 10000, nullable: true,
      placeholder: "no limit", help: "The last epoch runs are compared at" }),
    forms.numberField({ name: "et_n_startup_trials", id: "sweep-et-n-startup-trials", label: "n_startup_trials", integer: true, min: 0, max: 10000, nullable: true,
      placeholder: "5", help: "Finished runs needed before any is stopped" }),
  ];
  for (const controller of controllers) {
    sweepFields.set(controller.name, controller);
    if (controller.name.startsWith("et_")) controller.element.classList.add("sweep-et-options");
    $("sweep-fields").append(controller.element);
    controller.control.addEventListener("input", updateCount);
    controller.control.addEventListener("change", updateCount);
  }
  const metric = "value" in reading && reading.value ? String(reading.value) : "val/iou";
  setSweepValues({ method: "grid", metric, goal: metric.endsWith("loss") ? "minimize" : "maximize", target: null,
    max_runs: null, parallel: 2, sweep_seed: null, early_terminate: "none" });
  sweepFields.get("metric").control.addEventListener("change", () => {
    const value = /** @type {HTMLInputElement} */ (sweepFields.get("metric").control).value;
    sweepFields.get("goal").set(value.endsWith("loss") ? "minimize" : "maximize");
  });
  sweepFields.get("early_terminate").control.addEventListener("change", showEarlyTerminate);
  showEarlyTerminate();
}

// Only the options of the chosen early-termination type are shown (and sent).
function showEarlyTerminate() {
  const reading = sweepFields.get("early_terminate").get();
  const shown = new Set(EARLY_TERMINATE_OPTIONS["value" in reading ? String(reading.value) : ""] || []);
  for (const [name, controller] of sweepFields) {
    if (name.startsWith("et_")) controller.element.hidden = !shown.has(name);
  }
}

function setSweepValues(values) {
  for (const [name, value] of Object.entries(values)) sweepFields.get(name).set(value);
}

function updateCount() {
  if (!sweepMode.checked) return;
  const method = sweepFields.get("method").get();
  const { text, count } = countText(switches, "value" in method ? method.value : "grid");
  const line = $("grid-count");
  line.textContent = text;
  line.dataset.count = count === null ? "" : String(count);
}

function showSweepMode() {
  const on = sweepMode.checked;
  if (on) buildSweepFields();
  $("sweep-settings").hidden = !on;
  form.classList.toggle("sweep-mode", on);
  for (const sweep of switches.values()) {
    /** @type {HTMLElement} */ (sweep.toggle.closest(".sweep-switch")).hidden = !on;
    if (!on && sweep.toggle.checked) sweep.set(null);
  }
  submitButton.textContent = on ? "Start sweep" : "Queue run";
  // A sweep's name is the run name field's: its runs are named "<name> #<trial>".
  const nameLabel = form.querySelector('label[for="run-name"]');
  if (nameLabel) nameLabel.textContent = on ? "Sweep name" : "Name";
  const nameHelp = document.getElementById("run-name-help");
  if (nameHelp) nameHelp.textContent = on ? "Its runs are named <name> #<trial number>; empty: <method> sweep" : "Shown in lists and charts; empty: <model>-<dataset>";
  updateCount();
}

// --- clone and prefill -----------------------------------------------------------------------

async function prefill() {
  const params = new URLSearchParams(location.search);
  const fineTuneId = params.get("fine_tune");
  const cloneId = params.get("clone") || fineTuneId;
  const datasetName = params.get("dataset");
  if (cloneId) {
    let run;
    try {
      run = await api(`/api/v1/runs/${encodeURIComponent(cloneId)}`);
    } catch (error) {
      say(status, `Cannot clone run ${cloneId}: ${error.message}`, "error");
      return;
    }
    if (!run.config) {
      say(status, `Run #${run.id} (${run.name}) is an external run: it has no config to clone.`, "error");
      return;
    }
    // Fine-tuning starts from the source's best weights: its config, with init_from naming it.
    const config = fineTuneId ? { ...run.config, init_from: `run:${run.id}` } : run.config;
    const unknown = configForm.write(config);
    setRunValues({
      name: `${run.name} (${fineTuneId ? "fine-tuned" : "clone"})`, tags: run.tags, priority: run.priority,
      queue: run.queue, max_retries: run.max_retries, notes: "",
    });
    const note = $("clone-note");
    const source = el("a", { href: `/runs/${run.id}` }, `run #${run.id} ${run.name}`);
    note.replaceChildren(...(fineTuneId
      ? ["Fine-tuning from the best weights of ", source, ": change the data, classes or schedule and queue it."]
      : ["Cloned from ", source, ": change what you want to try and queue it."]));
    note.hidden = false;
    if (unknown.length) say(status, `Left out config keys this version does not know: ${unknown.join(", ")}`, "error");
    if (params.get("sweep")) sweepAround(run);
  } else if (datasetName) {
    configForm.fields.get("dataset").set(datasetName);
  } else if (datasets.length === 1) {
    configForm.fields.get("dataset").set(datasets[0].dataset.name);
  }
}

// A sweep around a run: its config as the base, a neighbourhood of the numbers it set searched
// (the learning rate on a log range, batch size, weight decay and momentum as values around it).
function sweepAround(run) {
  sweepMode.checked = true;
  showSweepMode();
  setRunValues({ name: `${run.name} (sweep)` });
  setSweepValues({ method: "bayes", max_runs: 20 });
  const searched = [];
  for (const [name, setting] of Object.entries(neighbourhood(run.config))) {
    const sweep = switches.get(name);
    if (!sweep) continue;
    sweep.set(setting);
    searched.push(name);
  }
  $("clone-note").replaceChildren("Sweeping around ", el("a", { href: `/runs/${run.id}` }, `run #${run.id} ${run.name}`),
    `: its config is the base, ${searched.length ? `${searched.join(", ")} searched around its values` : "nothing searched yet"}; switch “sweep” on or off for the fields to search.`);
  updateCount();
}

// --- submit ----------------------------------------------------------------------------------

function collect() {
  const problems = [];
  const body = {};
  for (const [name, controller] of runFields) {
    const result = controller.get();
    if ("problem" in result) problems.push({ field: name, message: result.problem });
    else body[name] = result.value;
  }
  const { config, problems: configProblems } = configForm.read();
  body.config = config;
  return { body, problems: [...problems, ...configProblems] };
}

// The sweep spec: the run fields a sweep takes, the swept fields as parameters (left out of the
// base config) and the sweep's settings.
function collectSweep() {
  const { body, problems: read } = collect();
  const { parameters, problems: sweepProblems } = readParameters(switches);
  const config = { ...body.config };
  for (const name of Object.keys(parameters)) delete config[name];
  // A swept field's own control is hidden: what it holds does not matter.
  const problems = read.filter((problem) => !(switches.has(problem.field) && switches.get(problem.field).on()));
  /** @type {Record<string, any>} */
  const spec = { config, parameters, tags: body.tags, priority: body.priority };
  if (body.name) spec.name = body.name;
  if (body.queue) spec.queue = body.queue;
  /** @type {Record<string, any>} */
  const settings = {};
  for (const [name, controller] of sweepFields) {
    if (controller.element.hidden) continue;
    const reading = controller.get();
    if ("problem" in reading) problems.push({ field: name, message: reading.problem });
    else if (reading.value !== null) settings[name] = reading.value;
  }
  Object.assign(spec, specSettings(settings));
  if (!Object.keys(parameters).length && !sweepProblems.length) {
    problems.push({ field: null, message: "switch “sweep” on next to at least one field, and give its values or range" });
  }
  return { spec, problems: [...problems, ...sweepProblems] };
}

async function submitSweep() {
  const { spec, problems } = collectSweep();
  if (problems.length) {
    errors.show(problems);
    return;
  }
  submitButton.disabled = true;
  submitButton.textContent = "Starting…";
  try {
    const sweep = await api("/api/v1/sweeps", { method: "POST", json: spec });
    location.assign(`/sweeps/${sweep.id}`);
  } catch (error) {
    errors.show(placeProblems(apiProblems(error, "dataset")), "The sweep was not started");
    submitButton.disabled = false;
    submitButton.textContent = "Start sweep";
  }
}

async function submit(event) {
  event.preventDefault();
  if (!configForm) return;
  errors.clear();
  say(status, "");
  if (sweepMode.checked) {
    await submitSweep();
    return;
  }
  const { body, problems } = collect();
  if (problems.length) {
    errors.show(problems);
    return;
  }
  submitButton.disabled = true;
  submitButton.textContent = "Queueing…";
  try {
    const run = await api("/api/v1/runs", { method: "POST", json: body });
    location.assign(`/runs/${run.id}`);
  } catch (error) {
    const title = error.code === "dataset_rejected" ? "The dataset failed inspection"
      : error.code === "path_not_allowed" ? "The dataset folder is not allowed" : undefined;
    errors.show(placeProblems(apiProblems(error, "dataset")), title);
    submitButton.disabled = false;
    submitButton.textContent = "Queue run";
  }
}

// --- start -----------------------------------------------------------------------------------

async function loadDatasets() {
  const list = await api("/api/v1/datasets");
  return Promise.all(list.items.map(async (summary) => {
    const full = await api(`/api/v1/datasets/${summary.id}`);
    return { dataset: summary, report: full.report || {} };
  }));
}

async function start() {
  buildRunFields();
  let schema;
  try {
    [schema, datasets] = await Promise.all([api("/api/v1/config/schema"), loadDatasets()]);
  } catch (error) {
    $("config-groups").replaceChildren(el("p", { class: "error-text" }, `Cannot build the form: ${error.message}`));
    return;
  }
  const container = $("config-groups");
  container.replaceChildren();
  configForm = configForms.build(schema, container, { dataset: datasetPicker });
  showDatasetHints(null);
  switches = attachSwitches(configForm, schema.properties, updateCount);
  sweepMode.addEventListener("change", showSweepMode);
  sweepMode.checked = new URLSearchParams(location.search).has("sweep");
  showSweepMode();
  await prefill();
  form.addEventListener("submit", submit);
  form.dataset.ready = "true";
}

start();
