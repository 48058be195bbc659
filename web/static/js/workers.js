// Workers page: workers online and the queue in the order workers take it. The endpoint is
// small, so the page reads it again on every run/status event and every few seconds (worker
// heartbeats are not events); "last seen" and "queued for" tick every second in between.
"use strict";

(() => {
  const { api, el } = segtrack;
  const ui = segtrackUi;

  const REFRESH_MS = 3000;
  const $ = (id) => document.getElementById(id);
  let inFlight = false;
  let again = false;

  function workerRow(worker) {
    return el("tr", { "data-worker": worker.name },
      el("td", {}, el("div", { class: "strong" }, worker.name), el("div", { class: "muted" }, `${worker.hostname} · pid ${worker.pid}`)),
      el("td", {}, el("span", { class: "device" }, worker.device)),
      el("td", {}, worker.queues.map((queue) => el("span", { class: "chip" }, queue))),
      el("td", {}, worker.current_run
        ? el("a", { href: `/runs/${worker.current_run.id}` }, worker.current_run.name, el("span", { class: "muted" }, ` #${worker.current_run.id}`))
        : el("span", { class: "muted" }, "idle", worker.idle_since ? [" for ", elapsedSince(worker.idle_since)] : [])),
      el("td", {}, ui.timeAgo(worker.started_at)),
      el("td", {}, ui.timeAgo(worker.last_seen_at)));
  }

  function elapsedSince(iso) {
    return el("time", { datetime: iso || "", "data-since": "", title: segtrack.formatTime(iso) },
      ui.shortDuration(ui.secondsSince(iso)));
  }

  function queueRow(run) {
    return el("tr", { "data-run-id": run.id },
      el("td", { class: "num" }, String(run.position)),
      el("td", {}, el("a", { href: `/runs/${run.id}` }, run.name), el("span", { class: "muted" }, ` #${run.id}`)),
      el("td", {}, el("span", { class: "chip" }, run.queue)),
      el("td", { class: "num" }, String(run.priority)),
      el("td", {}, run.queued_at ? elapsedSince(run.queued_at) : "–"));
  }

  async function refresh() {
    if (inFlight) { again = true; return; }
    inFlight = true;
    try {
      const data = await api("/api/v1/workers");
      $("workers-body").replaceChildren(...data.workers.map(workerRow));
      $("workers-empty").hidden = data.workers.length > 0;
      $("workers-table").hidden = data.workers.length === 0;
      $("queue-body").replaceChildren(...data.queue.map(queueRow));
      $("queue-empty").hidden = data.queue.length > 0;
      $("queue-table").hidden = data.queue.length === 0;
      $("workers-updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
      ui.say($("workers-message"), "");
      document.body.dataset.loaded = "true";
    } catch (error) {
      ui.say($("workers-message"), `Cannot read the workers: ${error.message}`, "error");
    } finally {
      inFlight = false;
      if (again) { again = false; refresh(); }
    }
  }

  function tick() {
    ui.refreshTimes(document);
    for (const node of document.querySelectorAll("time[data-since]")) {
      node.textContent = ui.shortDuration(ui.secondsSince(node.getAttribute("datetime")));
    }
  }

  segtrack.subscribe("/api/v1/events", (event) => {
    if (event.kind === "status" || event.kind === "run") refresh();
  });
  setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
  setInterval(tick, 1000);
  refresh();
})();
