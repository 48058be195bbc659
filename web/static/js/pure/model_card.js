// The run's model card as the run page prints it: parameters, FLOPs of one image at the
// training size, forward-pass latency at batch 1 and at the batch size, images per second, where
// it was measured, and the peak training memory (the largest `train/peak_memory_mib` so far).
// The card comes from the trainer (`run_info.model_card`, see trainer/model_card.py); runs
// reported without one, and measurements that failed (null), read "not measured".

import { compactCount } from "./format.js";

export const PEAK_MEMORY_KEY = "train/peak_memory_mib";
export const NOT_MEASURED = "not measured";

/**
 * The card as GET /api/v1/runs/{id} answers it (`run_info.model_card`).
 * @typedef {object} ModelCard
 * @property {number} parameters
 * @property {number} trainable_parameters
 * @property {number | null} flops one forward pass of one image (a multiply-add counts as 2)
 * @property {[number, number]} image_size [height, width] of the measured input
 * @property {number} in_channels
 * @property {number} batch_size
 * @property {number | null} latency_ms_batch_1
 * @property {number | null} latency_ms_batch
 * @property {number | null} images_per_s
 * @property {string} device
 * @property {string} precision
 */

/**
 * One line of the card: what, its value as text, and the exact figure for a tooltip.
 * @typedef {object} CardRow
 * @property {string} label
 * @property {string} value
 * @property {string} [title]
 */

/**
 * @param {unknown} value
 * @returns {value is number}
 */
function isNumber(value) {
  return typeof value === "number" && Number.isFinite(value);
}

/**
 * Three significant digits, no exponent: 812, 81.2, 8.12, 0.812, 0.0812.
 * @param {number} value
 */
function significant(value) {
  if (value === 0) return "0";
  if (Math.abs(value) >= 100) return Math.round(value).toLocaleString("en-US");
  return String(Number(value.toPrecision(3)));
}

/**
 * FLOPs in the largest unit that leaves at least 1: 12.4 GFLOPs, 310 MFLOPs, 1.2 TFLOPs.
 * @param {number | null | undefined} flops
 */
export function formatFlops(flops) {
  if (!isNumber(flops)) return NOT_MEASURED;
  /** @type {Array<[number, string]>} */
  const units = [[1e12, "TFLOPs"], [1e9, "GFLOPs"], [1e6, "MFLOPs"], [1e3, "kFLOPs"]];
  for (const [size, unit] of units) {
    if (Math.abs(flops) >= size) return `${significant(flops / size)} ${unit}`;
  }
  return `${significant(flops)} FLOPs`;
}

/**
 * Milliseconds with three significant digits, seconds from 1000 ms on: 0.412 ms, 12.5 ms, 1.25 s.
 * @param {number | null | undefined} ms
 */
export function formatLatency(ms) {
  if (!isNumber(ms)) return NOT_MEASURED;
  return ms >= 1000 ? `${significant(ms / 1000)} s` : `${significant(ms)} ms`;
}

/**
 * Images per second: 1,234 images/s, 56.7 images/s.
 * @param {number | null | undefined} rate
 */
export function formatRate(rate) {
  if (!isNumber(rate)) return NOT_MEASURED;
  return `${significant(rate)} images/s`;
}

/**
 * A size in MiB (2**20 bytes): 312 MiB, 12.5 MiB, 1.50 GiB from 1024 MiB on.
 * @param {number | null | undefined} mib
 */
export function formatMib(mib) {
  if (!isNumber(mib)) return NOT_MEASURED;
  return mib >= 1024 ? `${(mib / 1024).toFixed(2)} GiB` : `${significant(mib)} MiB`;
}

/**
 * The peak training memory so far: the largest `train/peak_memory_mib` of the run's metric
 * summaries (`metrics` of GET /api/v1/runs/{id}); null when the run logged none.
 * @param {Record<string, {max_value: number}> | null | undefined} metrics
 * @returns {number | null}
 */
export function peakMemoryMib(metrics) {
  const summary = metrics ? metrics[PEAK_MEMORY_KEY] : undefined;
  return summary && isNumber(summary.max_value) ? summary.max_value : null;
}

/**
 * @param {number} count
 */
function exactCount(count) {
  return count.toLocaleString("en-US");
}

/**
 * The trainable-parameters row. The card is measured as epoch 1 trains, so with
 * `freeze_encoder_epochs` the count leaves the encoder out although later epochs train it:
 * the row says for which epochs the count holds.
 * @param {ModelCard} card
 * @param {number} frozenEpochs the run's `freeze_encoder_epochs` (0: never frozen)
 * @returns {CardRow}
 */
function trainableRow(card, frozenEpochs) {
  const trainable = card.trainable_parameters;
  const label = "Trainable parameters";
  if (!(card.parameters > 0 && trainable < card.parameters)) {
    return { label, value: compactCount(trainable), title: `${exactCount(trainable)} parameters the optimizer updates` };
  }
  const percent = `${Math.round((trainable / card.parameters) * 100)}%`;
  if (frozenEpochs <= 0) {
    return {
      label,
      value: `${compactCount(trainable)} (${percent} of all)`,
      title: `${exactCount(trainable)} parameters the optimizer updates`,
    };
  }
  const epochs = frozenEpochs === 1 ? "epoch 1" : `epochs 1–${frozenEpochs}`;
  return {
    label,
    value: `${compactCount(trainable)} (${percent}) in ${epochs}, then all`,
    title: `${exactCount(trainable)} parameters the optimizer updates while the encoder is frozen (${epochs}); `
      + `all ${exactCount(card.parameters)} from epoch ${frozenEpochs + 1} on`,
  };
}

/**
 * The card's rows, in reading order; none for a run with neither a card nor a peak memory.
 * @param {ModelCard | null | undefined} card
 * @param {number | null} peakMib the peak training memory so far (`peakMemoryMib`)
 * @param {number} [frozenEpochs] the run's `freeze_encoder_epochs`
 * @returns {CardRow[]}
 */
export function cardRows(card, peakMib, frozenEpochs = 0) {
  /** @type {CardRow[]} */
  const rows = [];
  if (card) {
    const [height, width] = card.image_size;
    const size = `${height} × ${width}`;
    rows.push(
      { label: "Parameters", value: compactCount(card.parameters), title: `${exactCount(card.parameters)} parameters` },
      trainableRow(card, frozenEpochs),
      {
        label: `FLOPs per image at ${size}`,
        value: formatFlops(card.flops),
        title: isNumber(card.flops)
          ? `${exactCount(card.flops)} FLOPs of one forward pass of one ${card.in_channels}-channel ${size} image (torch's flop counter; a multiply-add counts as 2)`
          : "torch's flop counter could not count this model",
      },
      {
        label: "Latency, batch 1",
        value: formatLatency(card.latency_ms_batch_1),
        title: "median forward pass of one image: eval mode, no gradients, the training precision",
      },
      {
        label: `Latency, batch ${card.batch_size}`,
        value: formatLatency(card.latency_ms_batch),
        title: `median forward pass of ${card.batch_size} images (the training batch size)`,
      },
      {
        label: "Throughput",
        value: formatRate(card.images_per_s),
        title: `${card.batch_size} images / latency at batch ${card.batch_size}`,
      },
      { label: "Measured on", value: `${card.device}, ${card.precision}`, title: "the training device and precision, before epoch 1" },
    );
  }
  if (peakMib !== null) {
    rows.push({
      label: "Peak training memory",
      value: formatMib(peakMib),
      title: `${peakMib.toFixed(1)} MiB: the largest ${PEAK_MEMORY_KEY} so far`,
    });
  } else if (card) {
    rows.push({ label: "Peak training memory", value: NOT_MEASURED, title: `${PEAK_MEMORY_KEY} comes with each epoch's metrics; the run has logged none (yet)` });
  }
  return rows;
}
