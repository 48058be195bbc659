// Workers page: workers online with the run or job holding each of their slots (GPUs), and the
// queue in the order workers take it, where each queued
// run's priority and queue can be changed. The endpoint is small, so the page reads it again on
// every run/status event and every few seconds (worker heartbeats are not events); "last seen"
// and "queued for" tick every second in between. Queue rows are kept and moved rather than
// rebuilt, so a control being used keeps its focus and what is being typed in it.

import { byId, el, say } from "./dom.js";
import { api } from "./http.js";
import { subscribe } from "./live.js";
import { ordinal } from "./pure/format.js";
import { mayChange, pageRights } from "./rights.js";
import { elapsedSince, refreshTimes, timeAgo } from "./widgets.js";

const REFRESH_MS = 3000;
const $ = byId;
const rights = pageRights();
let inFlight = false;
let again = false;

function workerRow(worker) {
  return el("tr", { "data-worker": worker.name },
    el("td", {}, el("div", { class: "strong" }, worker.name), el("div", { class: "muted" }, `${worker.hostname} · pid ${worker.pid}`)),
    el("td", {}, el("span", { class: "device" }, worker.device)),
    el("td", {}, worker.queues.map((queue) => el("span", { class: "chip" }, queue))),
    el("td", {}, slotList(worker)),
    el("td", {}, timeAgo(worker.started_at)),
    el("td", {}, timeAgo(worker.last_seen_at)));
}

// What holds a slot: a job (evaluate, predict, export, predict_image) of a run, a run, or nothing.
function holder(slot) {
  if (slot.job) {
    const { job } = slot;
    return el("span", { class: "slot-job", "data-job": job.id },
      `${job.kind} job #${job.id}`,
      job.run ? [" of ", el("a", { href: `/runs/${job.run.id}` }, job.run.name), el("span", { class: "muted" }, ` #${job.run.id}`)] : "",
      job.status === "cancelling" ? el("span", { class: "muted" }, " (being cancelled)") : "");
  }
  if (slot.run) return el("a", { href: `/runs/${slot.run.id}` }, slot.run.name, el("span", { class: "muted" }, ` #${slot.run.id}`));
  return el("span", { class: "muted" }, "free");
}

// One line per slot (GPU or CPU slot): the run holding it (a run on several GPUs shows on
// each), the job holding it, or "free".
function slotList(worker) {
  const busy = worker.slots.some((slot) => slot.run || slot.job);
  const lines = worker.slots.map((slot) => el("div", { class: "slot", "data-slot": slot.slot, "data-busy": String(Boolean(slot.run || slot.job)) },
    el("span", { class: "slot-name" }, slot.gpu !== null ? `GPU ${slot.gpu}` : `slot ${slot.slot + 1}`), ": ",
    holder(slot)));
  if (!busy && worker.idle_since) lines.push(el("div", { class: "muted" }, "idle for ", elapsedSince(worker.idle_since)));
  return lines;
}

// --- the queue: one kept <tr> per queued run, with its priority and queue controls ---------

const PRIORITIES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
const QUEUE_PATTERN = "[A-Za-z0-9_.:\\-]{1,64}";
const rows = new Map(); // run id -> { row, run, saving }

// PATCHes of one run go one after the other, so the last choice is the one that stays.
function save(entry, fields, done) {
  entry.saving = entry.saving.then(async () => {
    try {
      const run = await api(`/api/v1/runs/${entry.run.id}`, { method: "PATCH", json: fields });
      done(run);
    } catch (error) {
      say($("queue-status"), `Run #${entry.run.id} was not changed: ${error.message}`, "error");
    }
    refresh();
  });
}

function said(text) {
  say($("queue-status"), text, "ok");
}

function queueRow(run) {
  // shownQueue: the queue last shown in the input; a different value there is the user's.
  const entry = { run, saving: Promise.resolve(), shownQueue: null };
  const priority = el("select", { class: "priority-select", title: "0-9; 9 runs first" },
    PRIORITIES.map((value) => el("option", { value }, String(value))));
  priority.addEventListener("change", () => {
    const value = Number(priority.value);
    save(entry, { priority: value }, (saved) => said(`${saved.name} (#${saved.id}) now has priority ${saved.priority}.`));
  });
  const queue = el("input", {
    type: "text", name: "queue", list: "queue-names", required: true, pattern: QUEUE_PATTERN, maxlength: 64,
    autocomplete: "off", spellcheck: "false",
    title: "A worker queue: letters, digits and _ . : - (at most 64); Enter moves the run",
  });
  const move = el("button", { type: "submit" }, "Move");
  queue.addEventListener("input", () => { move.disabled = queue.value.trim() === entry.run.queue; });
  queue.addEventListener("keydown", (event) => {
    if (event.key === "Escape") { queue.value = entry.shownQueue; move.disabled = true; }
  });
  const form = el("form", { class: "move-form" }, queue, move);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const target = queue.value.trim();
    if (target === entry.run.queue) return;
    move.disabled = true;
    save(entry, { queue: target }, (saved) => {
      entry.run = { ...entry.run, queue: saved.queue };
      queue.value = entry.shownQueue = saved.queue;
      said(`${saved.name} (#${saved.id}) moved to queue ${saved.queue}.`);
    });
  });
  entry.row = el("tr", { "data-run-id": run.id },
    el("td", { class: "num", "data-cell": "position" }),
    el("td", {}, el("a", { href: `/runs/${run.id}` }), el("span", { class: "muted" }, ` #${run.id}`)),
    el("td", {}, form),
    el("td", { class: "num" }, priority),
    el("td", { "data-cell": "age" }));
  // Users the API would refuse (viewers, members on others' runs) see the values, not controls.
  if (!mayChange(rights, run.submitted_by)) {
    priority.disabled = queue.disabled = true;
    move.hidden = true;
    priority.title = queue.title = rights.canWrite
      ? `Submitted by ${run.submitted_by || "nobody recorded"}: a ${rights.role} changes only their own runs`
      : "Members and admins change a queued run's priority and queue";
  }
  entry.controls = { priority, queue, move };
  return entry;
}

// Show `run` in its kept row; a control in use, or a queue being typed, is left alone.
function updateRow(entry, run) {
  const { row, controls } = entry;
  entry.run = run;
  const [position, name, , , age] = row.children;
  position.textContent = String(run.position);
  position.title = `${ordinal(run.position)} to be taken`;
  name.firstChild.textContent = run.name;
  const label = `run #${run.id} ${run.name}`;
  controls.priority.setAttribute("aria-label", `Priority of ${label}`);
  controls.queue.setAttribute("aria-label", `Queue of ${label}`);
  controls.move.setAttribute("aria-label", `Move ${label} to this queue`);
  if (document.activeElement !== controls.priority) controls.priority.value = String(run.priority);
  if (controls.queue.value === (entry.shownQueue ?? "")) controls.queue.value = entry.shownQueue = run.queue;
  controls.move.disabled = controls.queue.value.trim() === run.queue;
  if (age.dataset.queuedAt !== (run.queued_at || "")) {
    age.dataset.queuedAt = run.queued_at || "";
    age.replaceChildren(run.queued_at ? elapsedSince(run.queued_at) : "–");
  }
}

// Put the rows in queue order, moving only those out of place; focus follows a moved row.
function showQueue(queue) {
  const body = $("queue-body");
  const active = document.activeElement;
  const wanted = queue.map((run) => {
    const entry = rows.get(run.id) || queueRow(run);
    rows.set(run.id, entry);
    updateRow(entry, run);
    return entry.row;
  });
  const ids = new Set(queue.map((run) => run.id));
  for (const id of [...rows.keys()]) if (!ids.has(id)) rows.delete(id);
  wanted.forEach((row, index) => {
    if (body.children[index] !== row) body.insertBefore(row, body.children[index] || null);
  });
  while (body.children.length > wanted.length) body.lastElementChild.remove();
  if (active instanceof HTMLElement && active.isConnected && document.activeElement !== active) active.focus({ preventScroll: true });
}

function showQueueNames(data) {
  const names = new Set(data.workers.flatMap((worker) => worker.queues));
  for (const run of data.queue) names.add(run.queue);
  $("queue-names").replaceChildren(...[...names].sort().map((name) => el("option", { value: name })));
}

async function refresh() {
  if (inFlight) { again = true; return; }
  inFlight = true;
  try {
    const data = await api("/api/v1/workers");
    $("workers-body").replaceChildren(...data.workers.map(workerRow));
    $("workers-empty").hidden = data.workers.length > 0;
    $("workers-table").hidden = data.workers.length === 0;
    showQueue(data.queue);
    showQueueNames(data);
    $("queue-empty").hidden = data.queue.length > 0;
    $("queue-table").hidden = data.queue.length === 0;
    $("workers-updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
    say($("workers-message"), "");
    document.body.dataset.loaded = "true";
  } catch (error) {
    say($("workers-message"), `Cannot read the workers: ${error.message}`, "error");
  } finally {
    inFlight = false;
    if (again) { again = false; refresh(); }
  }
}

subscribe("/api/v1/events", (event) => {
  if (event.kind === "status" || event.kind === "run") refresh();
});
setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
setInterval(() => refreshTimes(document), 1000);
refresh();
