// The run page's Evaluate, Predict and Export forms, the run's jobs (with a Cancel button while
// one is queued or running) and a job's results: test metrics and per-class tables,
// predicted-mask overlays, a validation image's prediction painted with the page's class
// colours, download links. The list is read again on every job event of the run's stream, and,
// in case the stream is away, every few seconds while a job is pending. A URL ending in
// `#job-<id>` opens that job: its row is scrolled to and marked, its results shown.

import { byId, el, say } from "./dom.js";
import { ApiError, api, csrfToken, messageOf } from "./http.js";
import { onJobEvent } from "./job_events.js";
import { KINDS, tile } from "./mask_tiles.js";
import { formatBytes, formatTime } from "./pure/format.js";
import {
  PENDING,
  PER_CLASS_KINDS,
  anyPending,
  cancellable,
  describeRequest,
  describeResult,
  perClassRows,
  summaryRows,
} from "./pure/job_summary.js";

const runId = Number(byId("run-page").dataset.runId);
/** Whether the signed-in user may queue and cancel the run's jobs (else the forms are hidden). */
const canChange = byId("run-page").dataset.canChange === "true";
/** The fallback read while a job is pending; job events refresh the list at once. */
const POLL_MS = 10000;
/** Jobs listed, at most (the API's limit): a linked job is looked for among them. */
const MAX_LISTED = 200;
const OVERLAYS_SHOWN = 24;

const message = byId("jobs-message");
const table = byId("jobs-table", HTMLTableElement);
const empty = byId("jobs-empty");
const resultArea = byId("job-result");

/** @type {any[]} */
let jobs = [];
/** @type {number | null} the job whose results are shown */
let selected = null;
/** @type {number | null} the job the URL names (`#job-<id>`), marked in the list */
let linked = null;
/** @type {number | null} the job this page queued last, whose "queued" line says how it ended */
let announced = null;
let pollTimer = 0;
/** @type {import("./mask_tiles.js").TileView | null} the page's class colours, once it has them */
let tileView = null;
/** @type {import("./mask_tiles.js").Tile[]} the predictions painted, repainted on a colour change */
let tiles = [];

/**
 * Paint predictions with `view` (the run page's palette and overlay opacity, shared with its
 * previews); before this, predict_image jobs are described in words only.
 * @param {import("./mask_tiles.js").TileView} view
 */
export function paintWith(view) {
  tileView = view;
  drawTable();
  if (selected !== null) show(selected);
}

/** Repaint the predictions shown (the palette or the opacity changed). */
export function repaint() {
  for (const each of tiles) each.repaint();
}

/**
 * A predict_image job's prediction as a preview sample, for the mask tiles.
 * @param {any} job
 */
function predictedSample(job) {
  const r = job.result;
  const name = job.parameters.image_name;
  return { name, image_url: r.image_url, truth_url: r.truth_url, prediction_url: r.prediction_url };
}

/**
 * A tile of a succeeded predict_image job's prediction (null until the page's colours are known).
 * @param {any} job
 * @param {string} kind
 */
function predictionTile(job, kind) {
  if (!tileView || job.kind !== "predict_image" || job.status !== "succeeded" || !job.result) return null;
  const made = tile(kind, predictedSample(job), tileView);
  tiles.push(made);
  return made.element;
}

/**
 * POST images as a multipart form (the JSON helper sends JSON only).
 * @param {FileList} files
 * @returns {Promise<any>}
 */
async function uploadImages(files) {
  const form = new FormData();
  for (const file of Array.from(files)) form.append("files", file, file.name);
  /** @type {Record<string, string>} */
  const headers = { Accept: "application/json" };
  const token = csrfToken();
  if (token) headers["X-CSRF-Token"] = token;
  const response = await fetch(`/api/v1/runs/${runId}/predict-inputs`, {
    method: "POST",
    body: form,
    headers,
    credentials: "same-origin",
  });
  const text = await response.text();
  const body = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

/** @param {any} job */
function statusBadge(job) {
  return el("span", { class: `status status-${job.status}` }, job.status);
}

/**
 * Ask for the job to be cancelled; the list follows from its events.
 * @param {any} job
 * @param {HTMLButtonElement} button
 */
async function cancel(job, button) {
  button.disabled = true;
  try {
    const answer = await api(`/api/v1/jobs/${job.id}/cancel`, { method: "POST" });
    say(message, answer.status === "cancelled" ? `Job #${job.id} cancelled.` : `Job #${job.id} is being stopped.`, "ok");
  } catch (error) {
    say(message, messageOf(error), "error");
    button.disabled = false;
  }
  await refresh();
}

/** @param {any} job */
function actions(job) {
  if (job.status === "succeeded") {
    return el("button", { type: "button", class: "link-button", onclick: () => show(job.id) }, "Results");
  }
  if (canChange && cancellable(job)) {
    const button = el("button", {
      type: "button", class: "link-button job-cancel", title: `Cancel job #${job.id}`,
      "aria-label": `Cancel job #${job.id}`,
    }, "Cancel");
    button.addEventListener("click", () => cancel(job, button));
    return button;
  }
  return "";
}

/** @param {any} job */
function row(job) {
  const thumbnail = predictionTile(job, "overlay");
  const outcome =
    job.status === "cancelled" || job.status === "cancelling"
      ? el("span", { class: "job-reason job-reason-cancelled" }, job.reason || job.status)
      : job.status === "failed"
      ? [
          el("span", { class: "job-reason job-reason-failed" }, job.reason || "failed"),
          job.details ? el("details", {}, el("summary", {}, "Details"), el("pre", { class: "traceback" }, job.details)) : "",
        ]
      : [describeResult(job), thumbnail ? el("div", { class: "job-thumbnail" }, thumbnail) : ""];
  const marks = [job.id === selected ? "selected" : "", job.id === linked ? "linked" : ""];
  return el(
    "tr",
    { id: `job-${job.id}`, class: marks.filter(Boolean).join(" "), dataset: { jobId: String(job.id) } },
    el("td", {}, `#${job.id}`),
    el("td", {}, job.kind),
    el("td", {}, statusBadge(job)),
    el("td", {}, describeRequest(job)),
    el("td", {}, outcome),
    el("td", {}, formatTime(job.created_at), job.created_by ? ` by ${job.created_by}` : ""),
    el("td", {}, actions(job)),
  );
}

function drawTable() {
  tiles = [];
  empty.hidden = jobs.length > 0;
  table.hidden = jobs.length === 0;
  table.replaceChildren(
    el(
      "thead",
      {},
      el("tr", {}, ["Job", "Kind", "Status", "Request", "Result", "Created", ""].map((title) => el("th", { scope: "col" }, title))),
    ),
    el("tbody", {}, jobs.map(row)),
  );
}

/**
 * @param {any} job
 * @param {string} name
 */
function fileOf(job, name) {
  return (job.files || []).find((/** @type {any} */ file) => file.name === name);
}

/** @param {any} job */
function downloads(job) {
  const wanted = job.kind === "predict" ? ["masks.zip"] : (job.files || []).map((/** @type {any} */ f) => f.name);
  const links = wanted
    .map((/** @type {string} */ name) => fileOf(job, name))
    .filter(Boolean)
    .map((/** @type {any} */ file) =>
      el("a", { class: "button", href: file.url, download: true }, `${file.name} (${formatBytes(file.size_bytes)})`),
    );
  return el("div", { class: "job-files" }, links);
}

/** @param {any} result */
function evaluationTables(result) {
  const summary = el(
    "table",
    { "aria-label": "Test metrics" },
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "metric"), el("th", { scope: "col" }, "value"))),
    el("tbody", {}, summaryRows(result).map(([key, value]) => el("tr", {}, el("td", {}, key), el("td", {}, value)))),
  );
  const perClass = el(
    "table",
    { "aria-label": "Per class" },
    el("thead", {}, el("tr", {}, ["class", ...PER_CLASS_KINDS].map((title) => el("th", { scope: "col" }, title)))),
    el("tbody", {}, perClassRows(result).map((cells) => el("tr", {}, cells.map((cell) => el("td", {}, cell))))),
  );
  return [summary, perClass];
}

/** @param {any} job */
function overlays(job) {
  const images = (job.result.images || []).slice(0, OVERLAYS_SHOWN);
  const more = job.result.count - images.length;
  return [
    el(
      "div",
      { class: "overlay-grid" },
      images.map((/** @type {any} */ image) => {
        const file = fileOf(job, image.overlay);
        return el(
          "figure",
          {},
          file ? el("img", { src: file.url, alt: `Predicted mask over ${image.name}`, loading: "lazy" }) : "",
          el("figcaption", {}, image.name),
        );
      }),
    ),
    more > 0 ? el("p", { class: "muted" }, `${more} more in masks.zip`) : "",
  ];
}

/** @param {number} jobId */
function show(jobId) {
  selected = jobId;
  drawTable();
  const job = jobs.find((candidate) => candidate.id === jobId);
  if (!job || job.status !== "succeeded" || !job.result) {
    resultArea.replaceChildren();
    return;
  }
  const title = el("h3", {}, `Job #${job.id}: ${job.kind}, ${describeRequest(job)}`);
  // An export's result is its one-line summary (shown under the title) and its file.
  const body = job.kind === "evaluate" ? evaluationTables(job.result) : job.kind === "predict" ? overlays(job)
    : job.kind === "predict_image" ? [el("div", { class: "sample-tiles" }, KINDS.map((kind) => predictionTile(job, kind)))]
      : [];
  resultArea.replaceChildren(title, el("p", { class: "muted" }, describeResult(job)), ...body, downloads(job));
}

async function refresh() {
  window.clearTimeout(pollTimer);
  try {
    jobs = (await api(`/api/v1/runs/${runId}/jobs?limit=${MAX_LISTED}`)).items;
  } catch (error) {
    say(message, messageOf(error), "error");
    return;
  }
  drawTable();
  if (selected !== null) show(selected);
  sayHowAnnouncedEnded();
  if (anyPending(jobs)) pollTimer = window.setTimeout(refresh, POLL_MS);
}

/** Once the job this page queued has ended, its "queued" line says how. */
function sayHowAnnouncedEnded() {
  const job = jobs.find((candidate) => candidate.id === announced);
  if (!job || PENDING.includes(job.status)) return;
  announced = null;
  const how = job.status === "failed" && job.reason ? `failed: ${job.reason}` : job.status;
  say(message, `Job #${job.id} (${job.kind}) ${how}.`, job.status === "succeeded" ? "ok" : "error");
}

/** The job a `#job-<id>` URL names, or null. */
function jobInUrl() {
  const match = /^#job-([0-9]{1,10})$/.exec(window.location.hash);
  return match ? Number(match[1]) : null;
}

/** Scroll to the job the URL names, mark it and show its results (or say it is not listed). */
function openLinked() {
  linked = jobInUrl();
  if (linked === null) return;
  if (!jobs.some((job) => job.id === linked)) {
    say(message, `Job #${linked} is not among this run's ${jobs.length} latest jobs.`, "error");
    drawTable();
    return;
  }
  show(linked);
  document.getElementById(`job-${linked}`)?.scrollIntoView({ block: "center", inline: "start" });
}

let eventTimer = 0;
// A burst of events (queued, running, ended) reads the list once.
onJobEvent(runId, () => {
  window.clearTimeout(eventTimer);
  eventTimer = window.setTimeout(refresh, 150);
});

/**
 * Queue a job and show it; the form's button is disabled meanwhile.
 * @param {HTMLFormElement} form
 * @param {() => Promise<Record<string, any>>} request
 */
async function submit(form, request) {
  const button = form.querySelector("button[type=submit]");
  if (button instanceof HTMLButtonElement) button.disabled = true;
  try {
    const body = await request();
    const job = await api(`/api/v1/runs/${runId}/jobs`, { method: "POST", json: body });
    say(message, `Job #${job.id} (${job.kind}) queued.`, "ok");
    selected = job.id;
    announced = job.id;
    await refresh();
  } catch (error) {
    say(message, messageOf(error), "error");
  } finally {
    if (button instanceof HTMLButtonElement) button.disabled = false;
  }
}

/**
 * @param {HTMLFormElement} form
 * @param {string} name
 */
function value(form, name) {
  const field = form.elements.namedItem(name);
  return field instanceof HTMLInputElement || field instanceof HTMLSelectElement ? field.value : "";
}

function wireForms() {
  const evaluate = byId("evaluate-form", HTMLFormElement);
  evaluate.addEventListener("submit", (event) => {
    event.preventDefault();
    submit(evaluate, async () => {
      /** @type {Record<string, any>} */
      const body = { kind: "evaluate", checkpoint: value(evaluate, "checkpoint"), split: value(evaluate, "split") };
      const dataset = value(evaluate, "dataset");
      if (dataset) body.dataset = Number(dataset);
      return body;
    });
  });
  const exporting = byId("export-form", HTMLFormElement);
  exporting.addEventListener("submit", (event) => {
    event.preventDefault();
    submit(exporting, async () => ({ kind: "export", checkpoint: value(exporting, "checkpoint"), format: value(exporting, "format") }));
  });
  const predict = byId("predict-form", HTMLFormElement);
  predict.addEventListener("submit", (event) => {
    event.preventDefault();
    submit(predict, async () => {
      const files = byId("predict-files", HTMLInputElement).files;
      const folder = value(predict, "folder").trim();
      const tta = /** @type {HTMLInputElement} */ (predict.elements.namedItem("tta")).checked;
      /** @type {Record<string, any>} */
      const body = { kind: "predict", checkpoint: value(predict, "checkpoint"), tta };
      if (files && files.length > 0) {
        if (folder) throw new Error("choose images or a folder, not both");
        body.upload = (await uploadImages(files)).id;
        // Stored on the server now: another Predict should not upload them again unasked.
        byId("predict-files", HTMLInputElement).value = "";
      } else if (folder) {
        body.folder = folder;
      } else {
        throw new Error("choose images to upload, or name a folder on the server");
      }
      return body;
    });
  });
}

async function fillDatasets() {
  const select = byId("evaluate-dataset", HTMLSelectElement);
  try {
    const { items } = await api("/api/v1/datasets");
    select.append(...items.map((/** @type {any} */ dataset) => el("option", { value: String(dataset.id) }, dataset.name)));
  } catch {
    // The run's own dataset stays the choice; an error here is shown by the evaluation's answer.
  }
}

// The template leaves the forms out for users who may not queue jobs.
if (canChange) {
  wireForms();
  fillDatasets();
}
window.addEventListener("hashchange", openLinked);
refresh().then(() => {
  openLinked();
  // The panels above grow as the run page draws them: scroll to the linked job again then.
  const page = byId("run-page");
  if (linked === null || page.dataset.ready) return;
  const observer = new MutationObserver(() => {
    if (!page.dataset.ready) return;
    observer.disconnect();
    if (linked !== null) document.getElementById(`job-${linked}`)?.scrollIntoView({ block: "center", inline: "start" });
  });
  observer.observe(page, { attributes: true, attributeFilter: ["data-ready"] });
});
