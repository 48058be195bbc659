// Small shared pieces of the pages: relative times that tick, status badges, a confirm dialog,
// class colour swatches, the inspection badge, and a debounce for typed input.

import { el } from "./dom.js";
import { safeColor } from "./pure/colors.js";
import { reportSummary } from "./pure/dataset_facts.js";
import { formatTime, secondsSince, shortDuration } from "./pure/format.js";

/**
 * A <time> showing "3 min ago" with the full date as its tooltip; refreshTimes() updates it.
 * @param {string | null | undefined} iso
 */
export function timeAgo(iso) {
  if (!iso) return el("span", { class: "muted" }, "–");
  const node = el("time", { datetime: iso, title: formatTime(iso), "data-ago": "" });
  node.textContent = `${shortDuration(secondsSince(iso))} ago`;
  return node;
}

/**
 * A <time> showing how long ago `iso` was without "ago" ("12 min"); refreshTimes() updates it.
 * @param {string | null | undefined} iso
 */
export function elapsedSince(iso) {
  return el("time", { datetime: iso || "", "data-since": "", title: formatTime(iso) }, shortDuration(secondsSince(iso)));
}

/**
 * Refresh every timeAgo() and elapsedSince() element under `root` (a page's one-second ticker).
 * @param {ParentNode} [root]
 */
export function refreshTimes(root = document) {
  const now = Date.now();
  for (const node of root.querySelectorAll("time[data-ago]")) {
    node.textContent = `${shortDuration(secondsSince(node.getAttribute("datetime"), now))} ago`;
  }
  for (const node of root.querySelectorAll("time[data-since]")) {
    node.textContent = shortDuration(secondsSince(node.getAttribute("datetime"), now));
  }
}

/** @param {string} status */
export function statusBadge(status) {
  return el("span", { class: `status status-${status}`, "data-status": status }, status);
}

/**
 * A modal yes/no question on a <dialog>; resolves true when confirmed.
 * @param {{title: string, body: string | string[], confirmLabel?: string, dismissLabel?: string, danger?: boolean}} question
 * @returns {Promise<boolean>}
 */
export function confirmAction({ title, body, confirmLabel = "Confirm", dismissLabel = "Cancel", danger = false }) {
  return new Promise((resolve) => {
    const yes = el("button", { type: "submit", value: "yes", class: danger ? "danger" : "primary" }, confirmLabel);
    const no = el("button", { type: "submit", value: "no", autofocus: true }, dismissLabel);
    const dialog = el(
      "dialog",
      { class: "confirm", "aria-labelledby": "confirm-title" },
      el(
        "form",
        { method: "dialog" },
        el("h2", { id: "confirm-title" }, title),
        ...(Array.isArray(body) ? body : [body]).map((line) => el("p", {}, line)),
        el("div", { class: "actions" }, no, yes),
      ),
    );
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "yes");
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/**
 * A colour swatch; only '#rrggbb' reaches its style attribute.
 * @param {string} color
 * @param {string} [label]
 */
export function swatch(color, label) {
  return el("span", { class: "swatch", style: `background:${safeColor(color)}`, title: label || color, "aria-hidden": "true" });
}

/**
 * The classes as a list of colour swatches with their names.
 * @param {string[]} names
 * @param {string[]} colors
 */
export function classList(names, colors) {
  return el("ul", { class: "class-list" },
    names.map((name, index) => el("li", {}, swatch(colors[index], name), el("span", {}, name))));
}

/**
 * "no warnings", "2 warnings" or "1 error, 2 warnings" as a badge.
 * @param {import("./pure/dataset_facts.js").InspectionSummary} [report]
 */
export function reportBadge(report = {}) {
  const { text, kind } = reportSummary(report);
  return el("span", { class: `report-badge report-${kind}` }, text);
}

/**
 * `fn` called once calls stop for `ms`, with the last call's arguments.
 * @template {unknown[]} A
 * @param {(...args: A) => void} fn
 * @param {number} ms
 * @returns {(...args: A) => void}
 */
export function debounce(fn, ms) {
  /** @type {number | undefined} */
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
