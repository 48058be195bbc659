// Where a run came from, on the run page: the machine, user and command it trained with, the
// versions of what it ran on (Python, segtrack, torch, CUDA, cuDNN, GPUs, git commit), its lineage
// (cloned, fine-tuned or resumed from another run, and the runs made from it) and the files it
// logged besides its checkpoints. Text nodes only: every value comes from the training machine.

import { el } from "./dom.js";
import { formatBytes } from "./pure/format.js";

/** @type {Record<string, string>} */
const ORIGINS = {
  worker: "trained by a segtrack worker",
  cli: "trained by segtrack train",
  script: "logged by a training script",
};
const RELATIONS = {
  cloned_from: "Cloned from",
  fine_tuned_from: "Fine-tuned from",
  resumed_from: "Resumed from",
};
/** @type {Record<string, string>} */
const CHILD_RELATIONS = { clone: "clone", fine_tune: "fine-tuned", resume: "resumed" };
const VERSIONS = [
  ["python", "Python"],
  ["segtrack", "segtrack"],
  ["torch", "PyTorch"],
  ["cuda", "CUDA"],
  ["cudnn", "cuDNN"],
  ["platform", "Platform"],
];

/**
 * @param {string} label
 * @param {any} value text or nodes
 * @param {{wide?: boolean, title?: string | null}} [options]
 */
function fact(label, value, { wide = false, title = null } = {}) {
  return el("div", { class: wide ? "fact fact-wide" : "fact", "data-fact": label },
    el("dt", {}, label), el("dd", { title }, value));
}

/**
 * The header's short word on the kind of run: "external run" or how it was trained elsewhere.
 * @param {any} run
 */
export function kindText(run) {
  if (!run.external) return "";
  const origin = run.environment && run.environment.origin;
  return origin && origin !== "worker" ? ORIGINS[origin] || "external run" : "external run";
}

function runLink(reference) {
  return el("a", { href: `/runs/${reference.id}`, "data-run-link": String(reference.id) },
    `#${reference.id} ${reference.name}`,
    el("span", { class: `status status-${reference.status}` }, reference.status));
}

function lineageFacts(lineage) {
  if (!lineage) return [];
  const items = [];
  for (const [field, label] of Object.entries(RELATIONS)) {
    if (lineage[field]) items.push(fact(label, runLink(lineage[field]), { wide: true }));
  }
  const children = lineage.children || [];
  if (children.length) {
    const list = el("ul", { class: "lineage-children" }, children.map((child) => el("li", {},
      runLink(child), el("span", { class: "muted" }, ` (${CHILD_RELATIONS[child.relation] || child.relation})`))));
    items.push(fact(children.length === 1 ? "Run made from it" : `${children.length} runs made from it`, list, { wide: true }));
  }
  return items;
}

function gitText(environment) {
  if (!environment.git_commit) return null;
  const short = environment.git_commit.slice(0, 12);
  return environment.git_dirty ? `${short} (with uncommitted changes)` : short;
}

function environmentFacts(environment) {
  if (!environment) return [];
  const items = [];
  if (environment.origin) items.push(fact("Origin", ORIGINS[environment.origin] || environment.origin));
  if (environment.host) items.push(fact("Host", environment.host));
  if (environment.user) items.push(fact("User", environment.user));
  if (environment.pid != null) items.push(fact("Process", String(environment.pid)));
  if (environment.command) {
    items.push(fact("Command", el("code", { class: "command-line" }, environment.command), { wide: true, title: environment.command }));
  }
  if (environment.cwd) items.push(fact("Folder", environment.cwd, { wide: true }));
  const git = gitText(environment);
  if (git) items.push(fact("Git commit", git, { title: environment.git_commit }));
  for (const [key, label] of VERSIONS) {
    if (environment[key]) items.push(fact(label, String(environment[key])));
  }
  const gpus = environment.gpus || [];
  if (gpus.length) items.push(fact(gpus.length === 1 ? "GPU" : `${gpus.length} GPUs`, gpus.join(", "), { wide: true }));
  return items;
}

/**
 * Fill the provenance panel; it stays hidden when the run recorded nothing of the kind.
 * @param {any} run
 * @param {HTMLElement} panel
 * @param {HTMLElement} list
 */
export function show(run, panel, list) {
  const items = [...environmentFacts(run.environment), ...lineageFacts(run.lineage)];
  list.replaceChildren(...items);
  panel.hidden = !items.length;
}

function fileRow(runId, file) {
  const href = `/api/v1/runs/${runId}/files/${file.id}`;
  return el("tr", { "data-file": file.name },
    el("td", {}, el("a", { href, download: file.name }, file.name)),
    el("td", {}, file.kind),
    el("td", { class: "number" }, formatBytes(file.size_bytes)),
    el("td", {}, el("code", { title: `SHA-256 ${file.sha256}` }, file.sha256.slice(0, 12))));
}

/**
 * The files the run logged (besides its checkpoints), newest upload last.
 * @param {number} runId
 * @param {any[]} files
 * @param {HTMLElement} panel
 * @param {HTMLElement} table
 */
export function showFiles(runId, files, panel, table) {
  panel.hidden = !files.length;
  table.replaceChildren(
    el("thead", {}, el("tr", {}, el("th", {}, "File"), el("th", {}, "Kind"), el("th", {}, "Size"), el("th", {}, "SHA-256"))),
    el("tbody", {}, files.map((file) => fileRow(runId, file))));
}

