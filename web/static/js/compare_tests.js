// The compare page's Test results: one row per run with test/* metrics (the summary keys and
// per-class IoU at the evaluated checkpoint's epoch, the best of each column marked), each
// linking to its evaluation's files and to its job on the run page. compare.js imports it once
// the charts are drawn.

import { byId, el } from "./dom.js";
import { api } from "./http.js";
import { formatValue } from "./pure/format.js";
import { TEST_FILES, bestValues, fileUrl, jobLink, testColumns, testEvaluation, testRows } from "./pure/test_results.js";

const $ = byId;

/**
 * The links of a run's test row: the evaluation's confusion matrix and per-image scores (its
 * files), and its job on the run page, where its per-class table is.
 * @param {any} run
 * @param {import("./pure/test_results.js").EvaluateJob | null} job
 */
function testLinks(run, job) {
  const confusion = fileUrl(job, TEST_FILES.confusion);
  const perImage = fileUrl(job, TEST_FILES.perImage);
  return [
    confusion ? el("a", { href: confusion, download: true, "data-file": TEST_FILES.confusion }, "confusion matrix") : "",
    confusion && perImage ? " · " : "",
    perImage ? el("a", { href: perImage, download: true, "data-file": TEST_FILES.perImage }, "per-image scores") : "",
    confusion || perImage ? " · " : "",
    el("a", { href: jobLink(run.id, job), title: job ? `evaluate job #${job.id} on the run page` : "the run's evaluations" },
      job ? `job #${job.id}` : "run page"),
    job ? "" : el("span", { class: "muted" }, " (no evaluate job left: logged by the run)"),
  ];
}

/**
 * The runs' `test/*` metrics, one row per run evaluated on a test split; hidden without any.
 * @param {any[]} runs the runs compared, in their order
 * @param {(run: any) => string} colorOf a run's colour
 */
export async function renderTestResults(runs, colorOf) {
  const columns = testColumns(runs);
  const rows = testRows(runs, columns);
  $("test-panel").hidden = !rows.length;
  if (!rows.length) return;
  const jobs = await Promise.all(rows.map((row) => api(`/api/v1/runs/${row.runId}/jobs`)
    .then((body) => testEvaluation(body.items, row.epoch)).catch(() => null)));
  const best = bestValues(rows, columns);
  $("test-results").replaceChildren(
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Run"), el("th", { scope: "col", class: "num" }, "Epoch"),
      el("th", { scope: "col" }, "Evaluation"),
      ...columns.map((key) => el("th", { scope: "col", class: "num" }, key)))),
    el("tbody", {}, ...rows.map((row, index) => {
      const run = runs.find((candidate) => candidate.id === row.runId);
      return el("tr", { "data-run-id": row.runId },
        el("th", { scope: "row" }, el("span", { class: "run-swatch", style: `background: ${colorOf(run)}` }), " ",
          el("a", { href: `/runs/${run.id}` }, run.name)),
        el("td", { class: "num", title: "the evaluated checkpoint's epoch" }, String(row.epoch)),
        // Before the metric columns, which scroll sideways when a dataset has many classes.
        el("td", { class: "test-links" }, testLinks(run, jobs[index])),
        ...columns.map((key) => {
          const value = row.values[key];
          return el("td", { class: value !== undefined && value === best[key] ? "num best-value" : "num", "data-key": key },
            value === undefined ? "–" : formatValue(value));
        }));
    })));
}
