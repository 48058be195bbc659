// The run page: header (status, timings, actions), live charts, per-class table, mask previews,
// config, tags, notes and the log tail, kept current by the run's event stream (which also carries
// its dataset's colour changes). The validation views (every image's scores and the confusion
// heatmap) show one epoch, chosen by the previews' slider or their own selectors. The jobs panel
// (run_jobs.js) paints predictions with the previews' colours.

import { legend } from "./class_legend.js";
import { Palette, paletteForRun } from "./class_palette.js";
import * as configView from "./config_view.js";
import { byId, el } from "./dom.js";
import { api, messageOf } from "./http.js";
import { streamOpened, subscribe } from "./live.js";
import { errorLegend } from "./mask_tiles.js";
import { PreviewBrowser } from "./previews.js";
import { defaultPalette } from "./pure/colors.js";
import { yaml } from "./pure/config_text.js";
import { EpochChoice } from "./pure/epoch_choice.js";
import { formatDuration, formatNumber, formatTime } from "./pure/format.js";
import { pageRights } from "./rights.js";
import { ConfusionView } from "./run_confusion.js";
import { ImagesView } from "./run_images.js";
import * as runInfo from "./run_info.js";
import * as jobsPanel from "./run_jobs.js";
import { RunMetrics } from "./run_metrics.js";
import * as modelCard from "./run_model_card.js";
import * as runOrigin from "./run_origin.js";

const $ = byId;
const root = $("run-page");
const runId = Number(root.dataset.runId);
/** Whether the signed-in user may change this run (the server decides; the API refuses others). */
const canChange = root.dataset.canChange === "true";
const { canWrite } = pageRights();
const ACTIVE = ["queued", "running", "cancelling"];
const RESUMABLE = ["failed", "cancelled", "pruned"];
const LOG_POLL_MS = 2000;
const CONFIRM_MS = 4000;

/** @type {any} the run as GET /api/v1/runs/{id} last answered */
let run = null;
/** @type {Palette} */
let palette = null;
/** @type {RunMetrics} */
let metrics = null;
/** @type {PreviewBrowser} */
let previews = null;
/** @type {ImagesView} */
let images = null;
/** @type {ConfusionView} */
let confusion = null;
/** The epoch the validation views show. */
const validationEpoch = new EpochChoice();
/** @type {any[]} */
let checkpoints = [];
let notesDirty = false;
let detailTimer = 0;
let logTimer = 0;
// A cancel this page asked for and the worker has not finished yet: its note is replaced by
// the outcome when the run stops.
let cancelPending = false;

function showMessage(text, isError = true) {
  const message = $("page-message");
  message.textContent = text;
  message.classList.toggle("error-text", isError);
  message.hidden = !text;
}

/** @param {unknown} error */
function reportError(error) {
  showMessage(messageOf(error));
}

function setStatus(element, text, isError = false) {
  element.textContent = text;
  element.classList.toggle("error-text", isError);
}

// --- header ---------------------------------------------------------------------------------

function fact(label, ...value) {
  return [el("div", { class: "fact" }, el("dt", {}, label), el("dd", {}, ...value))];
}

function durationText() {
  if (!run.started_at) return "–";
  const end = run.finished_at ? new Date(run.finished_at) : new Date();
  return formatDuration(Math.max(0, (end.getTime() - Date.parse(run.started_at)) / 1000));
}

function renderHeader() {
  document.title = `${run.name} · segtrack`;
  const name = $("run-name", HTMLInputElement);
  if (document.activeElement !== name) name.value = run.name;
  name.size = Math.min(60, Math.max(12, name.value.length + 2));
  const badge = $("run-status");
  badge.textContent = run.status;
  badge.className = `status status-${run.status}`;
  $("run-kind").textContent = runOrigin.kindText(run);

  const dataset = run.dataset_id !== null
    ? el("a", { href: `/datasets#dataset-${run.dataset_id}` }, run.dataset_name || `dataset ${run.dataset_id}`)
    : (run.dataset_path || "–");
  const best = run.best_val_iou !== null
    ? `${formatNumber(run.best_val_iou, 4)} (epoch ${run.best_epoch ?? "–"})`
    : "–";
  const monitorBest = run.monitor && run.monitor !== "val/iou" && run.best_metric !== null
    ? fact(`Best ${run.monitor}`, `${formatNumber(run.best_metric, 4)} (epoch ${run.best_epoch ?? "–"})`)
    : [];
  $("run-facts").replaceChildren(
    ...fact("Dataset", dataset),
    ...fact("Model", run.model || "–"),
    ...fact("Submitted by", run.submitted_by || "–"),
    ...fact("Worker", run.worker || "–"),
    ...fact("Device", run.device || "–"),
    ...fact("Queue", `${run.queue}, priority ${run.priority}`),
    ...(run.gpus > 1 ? fact("GPUs", String(run.gpus)) : []),
    ...fact("Created", formatTime(run.created_at)),
    ...fact("Started", formatTime(run.started_at)),
    ...fact("Finished", formatTime(run.finished_at)),
    ...fact("Duration", el("span", { id: "run-duration" }, durationText())),
    ...fact("Best val/iou", best),
    ...monitorBest,
    ...fact("Last val/iou", formatNumber(run.last_val_iou, 4)),
    ...(run.attempt > 0 || run.max_retries > 0 ? fact("Attempt", `${run.attempt} (retries allowed: ${run.max_retries})`) : []),
  );
  runInfo.show(run, $("run-facts"), $("data-warnings"));
  modelCard.show(run, $("model-card-panel"), $("model-card"));
  runOrigin.show(run, $("provenance-panel"), $("provenance"));
  renderPlacementNote();

  $("progress-row").hidden = run.external && !run.epochs_done;
  const planned = run.epochs_planned;
  const progress = $("epochs-progress", HTMLProgressElement);
  progress.max = planned || Math.max(run.epochs_done, 1);
  progress.value = run.epochs_done;
  $("epochs-text").textContent = planned ? `${run.epochs_done} / ${planned}` : `${run.epochs_done} done`;

  const failure = $("failure");
  failure.hidden = run.status !== "failed";
  if (run.status === "failed") {
    $("failure-reason").textContent = run.failure_reason || "No reason was recorded.";
    $("failure-details").hidden = !run.failure_traceback;
    $("failure-traceback").textContent = run.failure_traceback || "";
  }
  renderActions();
  renderCancelOutcome();
  if (metrics) metrics.setBestEpoch(run.best_epoch ?? null, run.monitor || "val/iou");
}

// A queued run no online worker of its queue can take (it needs more GPUs) says so.
function renderPlacementNote() {
  let note = document.getElementById("placement-note");
  if (!note) {
    note = el("p", { id: "placement-note", class: "message", role: "status" });
    $("run-facts").before(note);
  }
  note.hidden = !run.placement_note;
  note.textContent = run.placement_note || "";
}

function renderCancelOutcome() {
  if (!cancelPending || ACTIVE.includes(run.status)) return;
  cancelPending = false;
  setStatus($("action-status"), run.status === "cancelled"
    ? "cancelled: the worker stopped the run"
    : `the run ended ${run.status} before the cancel took effect`);
}

function renderActions() {
  const cancel = $("cancel-run", HTMLButtonElement);
  cancel.hidden = !canChange || !ACTIVE.includes(run.status);
  cancel.disabled = run.status === "cancelling";
  if (run.status === "cancelling") cancel.textContent = "Cancelling…";
  else if (!cancel.dataset.confirming) cancel.textContent = "Cancel";
  const hasLast = checkpoints.some((item) => item.kind === "last");
  const resume = $("resume-group");
  const wasHidden = resume.hidden;
  resume.hidden = !canChange || run.external || !RESUMABLE.includes(run.status) || !hasLast;
  $("delete-run").hidden = !canChange;
  // A sweep's run resumes outside its sweep: its trial stays as it ended.
  $("resume-run").title = run.sweep_id
    ? `Continue from the last checkpoint, outside sweep ${run.sweep_id}: it stays a ${run.trial_status || run.status} trial there and no new trial is made`
    : "Continue from the last checkpoint";
  const epochs = $("resume-epochs", HTMLInputElement);
  if (wasHidden && !resume.hidden) {
    epochs.min = String(run.epochs_done + 1);
    epochs.value = String(Math.max(run.epochs_planned || 0, run.epochs_done + 1));
  }
  // A run trained elsewhere can be queued here when it recorded its config.
  // Anyone who may write clones, sweeps around or fine-tunes any run (the new run is theirs).
  $("clone-run").hidden = !canWrite || (run.external && !run.config);
  $("sweep-around-run").hidden = !canWrite || !run.config;
  $("fine-tune-run").hidden = !canWrite || run.external || !checkpoints.some((item) => item.kind === "best");
  for (const kind of ["best", "last"]) {
    const link = $(`download-${kind}`, HTMLAnchorElement);
    const checkpoint = checkpoints.find((item) => item.kind === kind);
    link.hidden = !checkpoint;
    if (checkpoint) {
      link.href = checkpoint.url;
      link.textContent = `${kind === "best" ? "Best" : "Last"} checkpoint (epoch ${checkpoint.epoch})`;
    }
  }
}

// A destructive button asks again on its own label instead of a modal dialog.
function confirmingButton(button, question, action) {
  button.addEventListener("click", async () => {
    if (!button.dataset.confirming) {
      button.dataset.confirming = "1";
      button.dataset.label = button.textContent;
      button.textContent = question;
      setTimeout(() => {
        if (button.dataset.confirming) { delete button.dataset.confirming; button.textContent = button.dataset.label; }
      }, CONFIRM_MS);
      return;
    }
    delete button.dataset.confirming;
    button.textContent = button.dataset.label;
    button.disabled = true;
    try {
      await action();
    } catch (error) {
      setStatus($("action-status"), error.message, true);
    } finally {
      button.disabled = false;
      if (run) renderActions();
    }
  });
}

function bindActions() {
  confirmingButton($("cancel-run", HTMLButtonElement), "Confirm cancel", async () => {
    run = await api(`/api/v1/runs/${runId}/cancel`, { method: "POST" });
    cancelPending = run.status === "cancelling";
    setStatus($("action-status"), cancelPending ? "cancel requested; the worker stops at the next check" : "cancelled");
    renderHeader();
    // The run may have stopped (and its status event been handled) while this answer was on
    // its way: read it again, so the page never stays on "cancelling".
    if (cancelPending) scheduleDetail(0);
  });
  confirmingButton($("delete-run"), "Confirm delete", async () => {
    const force = ACTIVE.includes(run.status) && run.status !== "queued" ? "?force=true" : "";
    await api(`/api/v1/runs/${runId}${force}`, { method: "DELETE" });
    window.location.assign("/");
  });
  $("resume-run").addEventListener("click", async () => {
    try {
      const epochs = Number($("resume-epochs", HTMLInputElement).value);
      const extend = Number.isInteger(epochs) && epochs > (run.epochs_planned || 0);
      run = await api(`/api/v1/runs/${runId}/resume`, { method: "POST", json: extend ? { epochs } : undefined });
      cancelPending = false;
      setStatus($("action-status"), extend
        ? `queued to resume from the last checkpoint and train to epoch ${epochs}`
        : "queued to resume from the last checkpoint");
      renderHeader();
      startLogs();
    } catch (error) {
      setStatus($("action-status"), error.message, true);
    }
  });
}

async function patchRun(fields) {
  run = await api(`/api/v1/runs/${runId}`, { method: "PATCH", json: fields });
  renderHeader();
  return run;
}

function bindName() {
  const name = $("run-name", HTMLInputElement);
  name.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); name.blur(); }
    if (event.key === "Escape") { name.value = run.name; name.blur(); }
  });
  name.addEventListener("change", async () => {
    const value = name.value.trim();
    if (!value || value === run.name) { name.value = run.name; return; }
    try {
      await patchRun({ name: value });
      setStatus($("name-status"), "renamed");
    } catch (error) {
      setStatus($("name-status"), error.message, true);
    }
  });
}

// --- tags and notes -------------------------------------------------------------------------

function renderTags() {
  $("tags").replaceChildren(...run.tags.map((tag) => el("li", { class: "tag" },
    el("span", {}, tag),
    canChange && el("button", {
      type: "button", class: "tag-remove", "aria-label": `Remove tag ${tag}`, title: "Remove",
      onclick: () => saveTags(run.tags.filter((item) => item !== tag)),
    }, "×"))));
}

async function saveTags(tags) {
  try {
    await patchRun({ tags });
    renderTags();
    setStatus($("tag-status"), "");
  } catch (error) {
    setStatus($("tag-status"), error.message, true);
  }
}

function bindTagsAndNotes() {
  $("tag-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("tag-input", HTMLInputElement);
    const tag = input.value.trim();
    if (!tag) return;
    if (run.tags.includes(tag)) { input.value = ""; return; }
    await saveTags([...run.tags, tag]);
    if (run.tags.includes(tag)) input.value = "";
  });
  const notes = $("notes", HTMLTextAreaElement);
  notes.addEventListener("input", () => { notesDirty = true; setStatus($("notes-status"), "unsaved changes"); });
  const save = async () => {
    try {
      await patchRun({ notes: notes.value });
      notesDirty = false;
      setStatus($("notes-status"), "saved");
    } catch (error) {
      setStatus($("notes-status"), error.message, true);
    }
  };
  $("save-notes").addEventListener("click", save);
  notes.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); save(); }
  });
}

/** For a user who may not change the run: its name and notes read-only, no tag form. */
function readOnlyEdits() {
  const name = $("run-name", HTMLInputElement);
  name.readOnly = true;
  name.title = "Only the run's owner (or an admin) may rename it";
  $("tag-form").hidden = true;
  $("notes", HTMLTextAreaElement).readOnly = true;
  $("save-notes").parentElement.hidden = true;
}

function renderNotes() {
  if (!notesDirty && document.activeElement !== $("notes", HTMLTextAreaElement)) $("notes", HTMLTextAreaElement).value = run.notes;
}

// --- config ---------------------------------------------------------------------------------

async function renderConfig() {
  const config = run.config || run.params || {};
  const schema = run.config ? await configView.schema() : null;
  $("config-title").textContent = run.config ? "Config" : "Parameters";
  $("config-hint").hidden = !run.config;
  $("config").replaceChildren(Object.keys(config).length
    ? configView.table(config, schema, run.config ? "other" : "parameters")
    : el("p", { class: "muted" }, "No config or parameters recorded."));
  const copy = async (text, what) => {
    try {
      await configView.copy(text);
      setStatus($("copy-status"), `copied as ${what}`);
    } catch (error) {
      setStatus($("copy-status"), `could not copy: ${error.message}`, true);
    }
  };
  $("copy-yaml").onclick = () => copy(yaml(config), "YAML");
  $("copy-json").onclick = () => copy(`${JSON.stringify(config, null, 2)}\n`, "JSON");
}

// --- log tail -------------------------------------------------------------------------------

async function refreshLog() {
  const log = $("log");
  const body = await api(`/api/v1/runs/${runId}/logs?tail=500`);
  const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
  const empty = run.external && run.heartbeat_timeout_s == null
    ? "This script sends no log lines." : "No log lines yet.";
  const text = body.lines.length ? body.lines.join("\n") : empty;
  if (log.textContent !== text) {
    log.textContent = text;
    if (atBottom) log.scrollTop = log.scrollHeight;
  }
}

function startLogs() {
  clearTimeout(logTimer);
  const tick = async () => {
    try { await refreshLog(); } catch (error) { reportError(error); }
    if (run && ACTIVE.includes(run.status)) logTimer = setTimeout(tick, LOG_POLL_MS);
  };
  tick();
}

// --- live -----------------------------------------------------------------------------------

async function refreshCheckpoints() {
  checkpoints = (await api(`/api/v1/runs/${runId}/checkpoints`)).checkpoints;
  renderActions();
}

async function refreshFiles() {
  const files = (await api(`/api/v1/runs/${runId}/files`)).items;
  runOrigin.showFiles(runId, files, $("files-panel"), $("files-table"));
}

async function refreshDetail() {
  const wasActive = ACTIVE.includes(run.status);
  run = await api(`/api/v1/runs/${runId}`);
  renderHeader();
  renderTags();
  renderNotes();
  if (wasActive && !ACTIVE.includes(run.status)) {
    startLogs();
    refreshCheckpoints().catch(reportError);
    refreshFiles().catch(reportError);
  }
  if (!wasActive && ACTIVE.includes(run.status)) startLogs();
}

// At most one refresh per `delay`, even while events stream in continuously.
function scheduleDetail(delay = 300) {
  if (detailTimer) return;
  detailTimer = setTimeout(() => {
    detailTimer = 0;
    refreshDetail().catch(reportError);
  }, delay);
}

function handle(event) {
  if (event.kind === "metrics") {
    metrics.handleEvent(event).catch(reportError);
    scheduleDetail(500);
  } else if (event.kind === "preview") {
    previews.addEpoch(event.epoch);
  } else if (event.kind === "validation") {
    addValidationEpoch(event.epoch);
  } else if (event.kind === "checkpoint") {
    refreshCheckpoints().catch(reportError);
  } else if (event.kind === "file") {
    refreshFiles().catch(reportError);
  } else if (event.kind === "status") {
    run.status = event.status;
    if (event.failure_reason) run.failure_reason = event.failure_reason;
    renderHeader();
    scheduleDetail(0);
  } else if (event.kind === "run") {
    if (event.action === "deleted") {
      showMessage("This run was deleted.");
      return;
    }
    if (event.action === "pins") {
      previews.pinsChanged();
      return;
    }
    scheduleDetail(0);
  } else if (event.kind === "dataset") {
    // The run's stream also carries dataset events: colours another page saved.
    palette.applyEvent(event);
  }
}

// --- validation views ---------------------------------------------------------------------

/** A `validation` event: that epoch's scores and matrix are stored (or stored again). */
function addValidationEpoch(epoch) {
  confusion.forget(epoch);
  images.newEpoch();
  validationEpoch.add(epoch);
  previews.refreshScores();
}

/** Whether a preview sample's scores at `epoch` are stored (its trend is never asked before). */
function scoreOf(sample, epoch) {
  return validationEpoch.epochs.includes(epoch) ? images.scoreOf(sample, epoch) : Promise.resolve(null);
}

/** An epoch picked in a validation view's selector: the previews go there too when they can. */
function chooseValidationEpoch(epoch) {
  validationEpoch.choose(epoch);
  if (previews.epochs.includes(epoch) && previews.shownEpoch !== epoch) previews.goTo(epoch);
}

async function startValidationViews() {
  // Asked first: the reads of the views are 404 before the first epoch's detail is stored.
  const { epochs } = await api(`/api/v1/runs/${runId}/validation`);
  if (!epochs.length) return;
  await Promise.all([images.start(), confusion.start()]);
  validationEpoch.setEpochs(epochs);
  // The slider may already show an older epoch than the latest stored.
  const shown = previews.epochs[previews.index];
  if (shown !== undefined) validationEpoch.choose(shown);
  previews.refreshScores();
}

async function loadPalette() {
  try {
    return await paletteForRun(run);
  } catch (error) {
    reportError(error);
    const names = run.class_names || [];
    return new Palette({ names, colors: defaultPalette(names.length), storageKey: `segtrack:class-colors:run-${runId}` });
  }
}

async function start() {
  try {
    run = await api(`/api/v1/runs/${runId}`);
  } catch (error) {
    showMessage(error.status === 404 ? `Run ${runId} does not exist (it may have been deleted).` : error.message);
    return;
  }
  const buffered = [];
  let ready = false;
  const source = subscribe(`/api/v1/runs/${runId}/events`, (event) => {
    if (ready) handle(event); else buffered.push(event);
  });
  // Listening from here on: the stream usually opens while the palette is still loading.
  const opened = streamOpened(source, 3000);
  bindActions();
  if (canChange) {
    bindName();
    bindTagsAndNotes();
  } else {
    readOnlyEdits();
  }
  renderHeader();
  renderTags();
  renderNotes();
  renderConfig().catch(reportError);
  startLogs();
  setInterval(() => {
    const duration = document.getElementById("run-duration");
    if (duration && run && run.status !== "queued" && !run.finished_at) duration.textContent = durationText();
  }, 1000);

  palette = await loadPalette();
  palette.followOtherTabs();
  $("class-legend").replaceChildren(legend(palette));
  $("error-legend").replaceChildren(el("h3", {}, "Error view"), errorLegend());

  // History is read once the stream is connected, so points committed meanwhile come as events
  // (the catch-up below covers a stream that took longer).
  root.dataset.stream = await opened;
  metrics = new RunMetrics({
    runId, container: $("charts"), classTable: $("class-table", HTMLTableElement), palette,
    xLabel: run.external && !run.epochs_done ? "step" : "epoch", withDefaults: !run.external, onError: reportError,
    emptyText: ACTIVE.includes(run.status) ? "Waiting for the first epoch…" : "No points recorded",
  });
  $("classes-panel").hidden = !palette.names.length;
  previews = new PreviewBrowser({
    runId, area: $("preview-area"), slider: $("epoch-slider", HTMLInputElement), output: $("epoch-value"),
    gotoInput: $("epoch-goto", HTMLInputElement), opacityInput: $("overlay-opacity", HTMLInputElement), opacityOutput: $("opacity-value"),
    palette, onError: reportError, outlineInput: $("truth-outline", HTMLInputElement),
    onEpoch: (epoch) => validationEpoch.choose(epoch),
    scoreOf, pins: canChange ? "edit" : "read",
  });
  jobsPanel.paintWith(previews.view);
  previews.repaintListeners.add(jobsPanel.repaint);
  images = new ImagesView({
    runId, panel: $("images-panel"), container: $("images"), choice: validationEpoch, previews,
    onChoose: chooseValidationEpoch, onError: reportError, canChange,
  });
  confusion = new ConfusionView({
    runId, panel: $("confusion-panel"), container: $("confusion"), choice: validationEpoch, palette,
    onChoose: chooseValidationEpoch, onError: reportError,
  });
  metrics.setBestEpoch(run.best_epoch ?? null, run.monitor || "val/iou");
  Object.assign(runPage, { metrics, previews, palette, images, confusion, validationEpoch });
  await Promise.all([
    metrics.load(Object.keys(run.metrics)).catch(reportError),
    previews.start().catch(reportError),
    refreshCheckpoints().catch(reportError),
    refreshFiles().catch(reportError),
  ]);
  if (!previews.epochs.length && !ACTIVE.includes(run.status)) $("preview-empty").textContent = "This run saved no previews.";
  // External runs never get previews from a worker: the section only shows when there are some.
  $("previews-panel").hidden = run.external && !previews.epochs.length;
  // After the previews: the validation views start at the slider's epoch.
  await startValidationViews().catch(reportError);
  ready = true;
  for (const event of buffered.splice(0)) handle(event);
  // Points committed while the stream was connecting are fetched once.
  setTimeout(() => metrics.catchUp(Object.keys(run.metrics)).catch(reportError), 1500);
  root.dataset.ready = "1";
}

/**
 * The page's parts once it has started (its charts, previews and class palette), for the
 * browser console and the browser tests, which import this module to reach them.
 * @type {{metrics?: RunMetrics, previews?: PreviewBrowser, palette?: Palette, images?: ImagesView,
 *   confusion?: ConfusionView, validationEpoch?: EpochChoice}}
 */
export const runPage = {};

start().catch(reportError);
