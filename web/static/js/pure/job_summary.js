// What the run page says about a job (evaluate, predict, export, predict_image): its request in a
// few words, its result in one line, an evaluation's per-class table, whether it may still be
// cancelled, and which checkpoint a validation image is predicted from. DOM-free, so node tests
// it.

/**
 * @typedef {object} JobLike
 * @property {string} kind
 * @property {string} status
 * @property {Record<string, any>} parameters
 * @property {Record<string, any> | null} result
 */

/** Kinds of the summary metrics an evaluation shows, in order. */
export const SUMMARY_KEYS = ["iou", "dice", "miou", "pixel_acc", "loss"];
/** The per-class columns of an evaluation's table. */
export const PER_CLASS_KINDS = ["iou", "dice", "precision", "recall"];

/**
 * @param {number | null | undefined} value
 * @param {number} [digits]
 */
function fixed(value, digits = 4) {
  return value === null || value === undefined || !Number.isFinite(value) ? "–" : value.toFixed(digits);
}

/**
 * The request in a few words: "best checkpoint, test split of shapes", "last, ONNX".
 * @param {JobLike} job
 */
export function describeRequest(job) {
  const p = job.parameters || {};
  const checkpoint = `${p.checkpoint || "best"} checkpoint`;
  if (job.kind === "evaluate") return `${checkpoint}, ${p.split} split of ${p.dataset}`;
  if (job.kind === "export") return `${checkpoint}, ${p.format === "torchscript" ? "TorchScript" : "ONNX"}`;
  if (job.kind === "predict_image") {
    return `validation image ${p.image_name} (#${p.image_index}), ${p.checkpoint} checkpoint (epoch ${p.checkpoint_epoch})`;
  }
  const source = p.upload ? "uploaded images" : `folder ${p.folder}`;
  return `${checkpoint}, ${source}${p.tta ? ", flip TTA" : ""}`;
}

/**
 * The result in one line, once the job succeeded; its reason when it failed.
 * @param {JobLike} job
 */
export function describeResult(job) {
  if (job.status !== "succeeded") return "";
  const r = job.result;
  if (!r) return "";
  if (job.kind === "evaluate") {
    const prefix = r.split;
    const iou = r.metrics ? r.metrics[`${prefix}/iou`] : undefined;
    const dice = r.metrics ? r.metrics[`${prefix}/dice`] : undefined;
    return `${prefix}/iou ${fixed(iou)}, ${prefix}/dice ${fixed(dice)} on ${r.num_images} images (epoch ${r.epoch})`;
  }
  if (job.kind === "export") {
    const format = r.format === "torchscript" ? "TorchScript" : "ONNX";
    const diffs = Object.values(r.max_abs_diff || {}).map(Number);
    if (!diffs.length) return format;
    const worst = Math.max(...diffs);
    return worst === 0 ? `${format}, matches PyTorch exactly` : `${format}, matches PyTorch within ${worst.toExponential(1)}`;
  }
  if (job.kind === "predict_image") {
    const classes = (r.classes_present || []).join(", ") || "none";
    return `${r.width}×${r.height} prediction with the weights of epoch ${r.epoch}; classes predicted: ${classes}`;
  }
  const counted = r.count === 1 ? "1 mask" : `${r.count} masks`;
  return `${counted}${r.tta ? " (flip TTA)" : ""}`;
}

/**
 * An evaluation's summary metrics as [key, formatted value] pairs, in SUMMARY_KEYS order.
 * @param {Record<string, any>} result
 * @returns {[string, string][]}
 */
export function summaryRows(result) {
  const metrics = result.metrics || {};
  /** @type {[string, string][]} */
  const rows = [];
  for (const kind of SUMMARY_KEYS) {
    const key = `${result.split}/${kind}`;
    if (key in metrics) rows.push([key, fixed(metrics[key])]);
  }
  return rows;
}

/**
 * An evaluation's per-class rows: the class name, then PER_CLASS_KINDS formatted ("–": not
 * defined, the class absent from truth and prediction).
 * @param {Record<string, any>} result
 * @returns {string[][]}
 */
export function perClassRows(result) {
  return (result.per_class || []).map((/** @type {Record<string, any>} */ row) => [
    String(row.class),
    ...PER_CLASS_KINDS.map((kind) => fixed(row[kind])),
  ]);
}

/** Statuses of a job that has not ended yet. */
export const PENDING = Object.freeze(["queued", "running", "cancelling"]);

/**
 * Whether the jobs list should be read again soon: a job is still queued, running or being
 * cancelled.
 * @param {JobLike[]} jobs
 */
export function anyPending(jobs) {
  return jobs.some((job) => PENDING.includes(job.status));
}

/**
 * Whether a cancel may be asked for: the job is queued or running (a cancelling one is being
 * stopped already).
 * @param {JobLike} job
 */
export function cancellable(job) {
  return job.status === "queued" || job.status === "running";
}

/**
 * What a pending job is doing, in a few words, for a progress line.
 * @param {JobLike} job
 */
export function progressText(job) {
  if (job.status === "queued") return "queued, waiting for a free worker slot…";
  if (job.status === "running") return "running on a worker…";
  if (job.status === "cancelling") return "being cancelled…";
  return job.status;
}

/**
 * @typedef {{kind: string, epoch: number}} CheckpointLike
 */

/**
 * The checkpoint a validation image at `epoch` is predicted from, as the server picks it: the
 * one whose epoch is nearest (`best` on a tie); null when there is none.
 * @param {CheckpointLike[]} checkpoints
 * @param {number} epoch
 * @returns {CheckpointLike | null}
 */
export function nearestCheckpoint(checkpoints, epoch) {
  /** @type {CheckpointLike | null} */
  let chosen = null;
  for (const checkpoint of checkpoints) {
    if (checkpoint.kind !== "best" && checkpoint.kind !== "last") continue;
    if (chosen === null) { chosen = checkpoint; continue; }
    const distance = Math.abs(checkpoint.epoch - epoch);
    const best = Math.abs(chosen.epoch - epoch);
    if (distance < best || (distance === best && checkpoint.kind < chosen.kind)) chosen = checkpoint;
  }
  return chosen;
}
