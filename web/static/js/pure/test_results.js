// The compare page's test results: the `test/*` metrics an evaluation of a run's checkpoint on
// its dataset's test split attached to the run (stored at the checkpoint's epoch), one row per
// run that has them, and which of the run's evaluate jobs they came from (its confusion matrix
// and per-image scores are that job's files).

export const TEST_PREFIX = "test/";
/** The summary keys, in the order evaluation prints them; per-class IoU columns follow. */
export const TEST_SUMMARY_KEYS = ["test/iou", "test/dice", "test/miou", "test/pixel_acc", "test/loss"];
const PER_CLASS_IOU = "test/iou/";
/** The evaluation's files a compare row links to, by what they show. */
export const TEST_FILES = { confusion: "confusion_matrix.csv", perImage: "per_image.csv" };

/**
 * @typedef {object} MetricSummary
 * @property {number} last_step
 * @property {number} last_value
 */

/**
 * The fields of a compared run the test results read.
 * @typedef {object} TestRun
 * @property {number} id
 * @property {string[] | null} [class_names]
 * @property {Record<string, MetricSummary>} metrics
 */

/**
 * @typedef {object} TestRow
 * @property {number} runId
 * @property {number} epoch the evaluated checkpoint's epoch (where the values are stored)
 * @property {Record<string, number>} values by key
 */

/**
 * @param {string} key
 */
export function isTestKey(key) {
  return key.startsWith(TEST_PREFIX);
}

/**
 * The columns: the summary keys some run has, then per-class IoU in the runs' class order
 * (classes no run names last, by name). Other per-class keys (Dice, precision, recall) stay on
 * the run page.
 * @param {TestRun[]} runs
 * @returns {string[]}
 */
export function testColumns(runs) {
  const present = new Set(runs.flatMap((run) => Object.keys(run.metrics).filter(isTestKey)));
  const summary = TEST_SUMMARY_KEYS.filter((key) => present.has(key));
  /** @type {string[]} */
  const classOrder = [];
  for (const run of runs) {
    for (const name of run.class_names || []) if (!classOrder.includes(name)) classOrder.push(name);
  }
  const perClass = [...present].filter((key) => key.startsWith(PER_CLASS_IOU));
  const rank = (/** @type {string} */ key) => {
    const index = classOrder.indexOf(key.slice(PER_CLASS_IOU.length));
    return index === -1 ? classOrder.length : index;
  };
  perClass.sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
  return [...summary, ...perClass];
}

/**
 * One row per run with test metrics, in the runs' order: the latest evaluated epoch's values
 * (a run evaluated at its best and at its last epoch shows the later one).
 * @param {TestRun[]} runs
 * @param {string[]} columns
 * @returns {TestRow[]}
 */
export function testRows(runs, columns) {
  /** @type {TestRow[]} */
  const rows = [];
  for (const run of runs) {
    const keys = columns.filter((key) => key in run.metrics);
    if (!keys.length) continue;
    const epoch = Math.max(...keys.map((key) => run.metrics[key].last_step));
    /** @type {Record<string, number>} */
    const values = {};
    for (const key of keys) {
      const summary = run.metrics[key];
      if (summary.last_step === epoch) values[key] = summary.last_value;
    }
    rows.push({ runId: run.id, epoch, values });
  }
  return rows;
}

/**
 * The best value of each column among the rows (lowest loss, highest anything else); none
 * where fewer than two rows have the column.
 * @param {TestRow[]} rows
 * @param {string[]} columns
 * @returns {Record<string, number>}
 */
export function bestValues(rows, columns) {
  /** @type {Record<string, number>} */
  const best = {};
  for (const key of columns) {
    const values = rows.map((row) => row.values[key]).filter((value) => typeof value === "number");
    if (values.length < 2) continue;
    best[key] = key.endsWith("loss") ? Math.min(...values) : Math.max(...values);
  }
  return best;
}

/**
 * A job of GET /api/v1/runs/{id}/jobs, as far as the test results read it.
 * @typedef {object} EvaluateJob
 * @property {number} id
 * @property {string} kind
 * @property {string} status
 * @property {{split?: string, epoch?: number} | null} result
 * @property {Array<{name: string, url: string}>} files
 */

/**
 * The evaluation the run's test metrics at `epoch` came from: its latest succeeded test-split
 * evaluate job of that checkpoint's epoch; null when none is left (deleted, or the metrics were
 * logged by a script).
 * @param {EvaluateJob[]} jobs
 * @param {number} epoch
 * @returns {EvaluateJob | null}
 */
export function testEvaluation(jobs, epoch) {
  const matching = jobs.filter((job) => job.kind === "evaluate" && job.status === "succeeded"
    && job.result && job.result.split === "test" && job.result.epoch === epoch);
  if (!matching.length) return null;
  return matching.reduce((latest, job) => (job.id > latest.id ? job : latest));
}

/**
 * The download address of one of a job's files, or null when it has none of that name.
 * @param {EvaluateJob | null} job
 * @param {string} name
 * @returns {string | null}
 */
export function fileUrl(job, name) {
  const file = job ? job.files.find((candidate) => candidate.name === name) : undefined;
  return file ? file.url : null;
}

/**
 * Where a run's test row points on the run page: the evaluate job's own entry in the jobs
 * panel, or the panel itself when no job is left.
 * @param {number} runId
 * @param {EvaluateJob | null} job
 * @returns {string}
 */
export function jobLink(runId, job) {
  return job ? `/runs/${runId}#job-${job.id}` : `/runs/${runId}#jobs-panel`;
}
