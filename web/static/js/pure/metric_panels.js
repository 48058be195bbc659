// Which chart panel of the run page a metric key goes to, and its colour there: the standard
// panels (loss, scores, learning rate, IoU per class, ...), one per other key, and the System
// group's panels for `sys/` keys (worker/system_metrics.py names them; one series per GPU).

/**
 * @typedef {object} Panel
 * @property {string} id
 * @property {string} title
 * @property {string[]} [keys] the keys it shows
 * @property {string} [prefix] or the keys starting with this
 * @property {RegExp} [match] or the keys matching this
 * @property {(match: RegExpExecArray) => SeriesLook} [series] how a matched key is labelled
 * @property {boolean} [always] shown before any point arrives
 * @property {string} [x] its own x axis label ("step")
 * @property {boolean} [system] a `sys/` panel: x is seconds since the run started
 */

/** @typedef {{label: string, gpu?: number, dash?: number[]}} SeriesLook */

/** @type {readonly Panel[]} */
export const PANELS = Object.freeze([
  { id: "loss", title: "Loss", keys: ["train/loss", "val/loss"], always: true },
  { id: "scores", title: "Scores", keys: ["val/iou", "val/dice", "val/miou", "val/pixel_acc"], always: true },
  { id: "lr", title: "Learning rate", keys: ["lr"], always: true },
  { id: "per-class", title: "IoU per class", prefix: "val/iou/", always: true },
  { id: "loss-step", title: "Train loss per step", keys: ["train/loss_step"], x: "step" },
  { id: "throughput", title: "Training images per second", keys: ["train/images_per_s"] },
]);

/** @param {RegExpExecArray} match */
const gpuSeries = (match) => ({ label: `GPU ${match[1]}`, gpu: Number(match[1]) });

/** @type {readonly Panel[]} */
export const SYSTEM_PANELS = Object.freeze([
  { id: "sys-gpu-util", title: "GPU utilisation (%)", match: /^sys\/gpu(\d+)\/utilization_percent$/, series: gpuSeries },
  {
    id: "sys-gpu-memory", title: "GPU memory (MiB)", match: /^sys\/gpu(\d+)\/memory_(used|total)_mb$/,
    series: (/** @type {RegExpExecArray} */ match) => ({
      label: `GPU ${match[1]} ${match[2]}`, gpu: Number(match[1]), dash: match[2] === "total" ? [6, 4] : undefined,
    }),
  },
  { id: "sys-cpu", title: "CPU of the run's processes (% of one core)", keys: ["sys/cpu_percent"] },
  { id: "sys-data-wait", title: "Step time spent waiting for data (%)", keys: ["sys/data_wait_percent"] },
  { id: "sys-rss", title: "Memory of the run's processes (MiB)", keys: ["sys/rss_mb"] },
  { id: "sys-host-memory", title: "Host memory used (%)", keys: ["sys/host_memory_percent"] },
  { id: "sys-host-memory-gb", title: "Host memory used (GiB)", keys: ["sys/host_memory_used_gb"] },
  { id: "sys-gpu-temperature", title: "GPU temperature (°C)", match: /^sys\/gpu(\d+)\/temperature_c$/, series: gpuSeries },
  { id: "sys-gpu-power", title: "GPU power (W)", match: /^sys\/gpu(\d+)\/power_w$/, series: gpuSeries },
].map((panel) => ({ ...panel, system: true })));

export const SYSTEM_PREFIX = "sys/";
export const PER_CLASS_IOU = "val/iou/";
const PER_CLASS_DICE = "val/dice/";

/** @type {Readonly<Record<string, string>>} */
export const KEY_COLORS = Object.freeze({
  "train/loss": "#2463eb", "val/loss": "#e8590c", "val/iou": "#2463eb", "val/dice": "#0ca678",
  "val/miou": "#9c36b5", "val/pixel_acc": "#e8590c", lr: "#495057", "train/loss_step": "#2463eb",
  "train/images_per_s": "#0ca678",
});

/** Colours of series that have none of their own (Tableau 10). */
export const OTHER_COLORS = Object.freeze(["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]);

/**
 * @param {Panel} panel
 * @param {string} key
 */
function matches(panel, key) {
  return Boolean((panel.keys && panel.keys.includes(key))
    || (panel.prefix && key.startsWith(panel.prefix)) || (panel.match && panel.match.test(key)));
}

/**
 * The panel a key belongs to, or null for keys only the per-class table shows (Dice per class).
 * A key no panel names gets a panel of its own, `key:<key>`.
 * @param {string} key
 * @returns {Panel | null}
 */
export function panelOf(key) {
  if (key.startsWith(SYSTEM_PREFIX)) {
    return SYSTEM_PANELS.find((panel) => matches(panel, key)) || { id: `key:${key}`, title: key, keys: [key], system: true };
  }
  const panel = PANELS.find((item) => matches(item, key));
  if (panel) return panel;
  if (key.startsWith(PER_CLASS_DICE)) return null;
  return { id: `key:${key}`, title: key, keys: [key] };
}

/**
 * How a system panel labels and draws `key`.
 * @param {Panel} panel
 * @param {string} key
 * @returns {SeriesLook}
 */
export function systemSeriesOf(panel, key) {
  const match = panel.match && panel.series ? panel.match.exec(key) : null;
  return match && panel.series ? panel.series(match) : { label: key };
}

/**
 * Where a panel sorts in its grid: the standard panels in their order, others after them.
 * @param {Panel} panel
 * @returns {number} -1 for a panel that is not a standard one
 */
export function standardIndex(panel) {
  return (panel.system ? SYSTEM_PANELS : PANELS).findIndex((item) => item.id === panel.id);
}
