// The sweeps list (/sweeps): each sweep's name, status, method, progress, best value of its
// metric and when it was created, newest first; read again every few seconds while one runs.

import { byId, el, say } from "./dom.js";
import { api, messageOf } from "./http.js";
import { formatNumber } from "./pure/format.js";
import { isLive } from "./pure/sweep_results.js";
import { miniProgress } from "./sweep_progress.js";
import { refreshTimes, statusBadge, timeAgo } from "./widgets.js";

const REFRESH_MS = 3000;
const PAGE = 50;
const $ = byId;
/** @type {any[]} */
let sweeps = [];
/** @type {number | null} */
let nextCursor = null;

/** @param {any} sweep */
function row(sweep) {
  return el("tr", { "data-sweep-id": sweep.id },
    el("td", {}, el("a", { href: `/sweeps/${sweep.id}` }, sweep.name), el("span", { class: "muted" }, ` #${sweep.id}`)),
    el("td", {}, statusBadge(sweep.status)),
    el("td", {}, sweep.method),
    el("td", {}, miniProgress(sweep.counts, sweep.max_runs)),
    el("td", { class: "num", title: `${sweep.goal} ${sweep.metric}` },
      sweep.best_value === null ? el("span", { class: "muted" }, "–") : formatNumber(sweep.best_value, 4),
      el("span", { class: "muted" }, ` ${sweep.metric}`)),
    el("td", {}, timeAgo(sweep.created_at)));
}

function render() {
  $("sweeps-body").replaceChildren(...sweeps.map(row));
  $("sweeps-empty").hidden = sweeps.length > 0;
  $("sweeps-more").hidden = nextCursor === null;
}

/** Read the first page again (and as many sweeps as are shown). */
async function refresh() {
  const limit = Math.min(200, Math.max(PAGE, sweeps.length));
  const body = await api(`/api/v1/sweeps?limit=${limit}`);
  sweeps = body.items;
  nextCursor = body.next_cursor;
  render();
}

async function more() {
  if (nextCursor === null) return;
  const body = await api(`/api/v1/sweeps?limit=${PAGE}&cursor=${nextCursor}`);
  sweeps = [...sweeps, ...body.items];
  nextCursor = body.next_cursor;
  render();
}

async function start() {
  $("sweeps-more").addEventListener("click", () => more().catch((error) => say($("sweeps-message"), messageOf(error), "error")));
  try {
    await refresh();
  } catch (error) {
    say($("sweeps-message"), `Cannot list the sweeps: ${messageOf(error)}`, "error");
  }
  $("sweeps-table").dataset.ready = "true";
  setInterval(() => {
    refreshTimes();
    if (sweeps.some(isLive)) refresh().catch(() => {});
  }, REFRESH_MS);
}

start();
