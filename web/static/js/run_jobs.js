// The run page's Evaluate, Predict and Export forms, the run's jobs (with a Cancel button while
// one is queued or running) and a job's results: test metrics and per-class tables,
// predicted-mask overlays, download links. The list is read again on every job event of the
// run's stream, and, in case the stream is away, every few seconds while a job is pending.

import { byId, el, say } from "./dom.js";
import { ApiError, api, csrfToken, messageOf } from "./http.js";
import { onJobEvent } from "./job_events.js";
import { formatBytes, formatTime } from "./pure/format.js";
import {
  PER_CLASS_KINDS,
  anyPending,
  cancellable,
  describeRequest,
  describeResult,
  perClassRows,
  summaryRows,
} from "./pure/job_summary.js";

const runId = Number(byId("run-page").dataset.runId);
/** The fallback read while a job is pending; job events refresh the list at once. */
const POLL_MS = 10000;
const OVERLAYS_SHOWN = 24;

const message = byId("jobs-message");
const table = byId("jobs-table", HTMLTableElement);
const empty = byId("jobs-empty");
const resultArea = byId("job-result");

/** @type {any[]} */
let jobs = [];
/** @type {number | null} the job whose results are shown */
let selected = null;
let pollTimer = 0;

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
  if (cancellable(job)) {
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
  const outcome =
    job.status === "cancelled" || job.status === "cancelling"
      ? el("span", { class: "job-reason muted" }, job.reason || job.status)
      : job.status === "failed"
      ? [
          el("span", { class: "job-reason" }, job.reason || "failed"),
          job.details ? el("details", {}, el("summary", {}, "Details"), el("pre", { class: "traceback" }, job.details)) : "",
        ]
      : describeResult(job);
  return el(
    "tr",
    { class: job.id === selected ? "selected" : "", dataset: { jobId: String(job.id) } },
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
  const body = job.kind === "evaluate" ? evaluationTables(job.result) : job.kind === "predict" ? overlays(job)
    : job.kind === "predict_image" ? [el("p", { class: "muted" }, "Shown with its truth, overlay and errors in the Images view.")]
      : [el("p", {}, describeResult(job))];
  resultArea.replaceChildren(title, el("p", { class: "muted" }, describeResult(job)), ...body, downloads(job));
}

async function refresh() {
  window.clearTimeout(pollTimer);
  try {
    jobs = (await api(`/api/v1/runs/${runId}/jobs`)).items;
  } catch (error) {
    say(message, messageOf(error), "error");
    return;
  }
  drawTable();
  if (selected !== null) show(selected);
  if (anyPending(jobs)) pollTimer = window.setTimeout(refresh, POLL_MS);
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

wireForms();
fillDatasets();
refresh();
