// The run page's model card: units a person reads at a glance, "not measured" where the trainer
// could not measure, and the peak training memory from the run's metric summaries.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  NOT_MEASURED, cardRows, formatFlops, formatLatency, formatMib, formatRate, peakMemoryMib,
} from "../../web/static/js/pure/model_card.js";

/** @returns {import("../../web/static/js/pure/model_card.js").ModelCard} */
function card(overrides = {}) {
  return {
    parameters: 7_765_188,
    trainable_parameters: 7_765_188,
    flops: 12_400_000_000,
    image_size: [256, 320],
    in_channels: 3,
    batch_size: 8,
    latency_ms_batch_1: 3.214,
    latency_ms_batch: 12.5,
    images_per_s: 640,
    device: "cuda:0 (NVIDIA H200)",
    precision: "bf16",
    ...overrides,
  };
}

/** @param {Array<{label: string, value: string}>} rows */
function byLabel(rows) {
  return Object.fromEntries(rows.map((row) => [row.label, row.value]));
}

test("FLOPs in the largest unit that leaves at least 1", () => {
  assert.equal(formatFlops(12_400_000_000), "12.4 GFLOPs");
  assert.equal(formatFlops(1_234_000_000_000), "1.23 TFLOPs");
  assert.equal(formatFlops(310_000_000), "310 MFLOPs");
  assert.equal(formatFlops(4_096), "4.1 kFLOPs");
  assert.equal(formatFlops(512), "512 FLOPs");
  assert.equal(formatFlops(null), NOT_MEASURED);
});

test("latency in ms, seconds from 1000 ms; images/s; MiB and GiB", () => {
  assert.equal(formatLatency(0.41234), "0.412 ms");
  assert.equal(formatLatency(12.54), "12.5 ms");
  assert.equal(formatLatency(1250), "1.25 s");
  assert.equal(formatLatency(undefined), NOT_MEASURED);
  assert.equal(formatRate(1234.4), "1,234 images/s");
  assert.equal(formatRate(56.71), "56.7 images/s");
  assert.equal(formatRate(null), NOT_MEASURED);
  assert.equal(formatMib(312.4), "312 MiB");
  assert.equal(formatMib(12.52), "12.5 MiB");
  assert.equal(formatMib(1536), "1.50 GiB");
  assert.equal(formatMib(Number.NaN), NOT_MEASURED);
});

test("the card's rows: readable units, the measured size, the batch size and the device", () => {
  const rows = byLabel(cardRows(card(), 1536));
  assert.deepEqual(rows, {
    "Parameters": "7.8 M",
    "Trainable parameters": "7.8 M",
    "FLOPs per image at 256 × 320": "12.4 GFLOPs",
    "Latency, batch 1": "3.21 ms",
    "Latency, batch 8": "12.5 ms",
    "Throughput": "640 images/s",
    "Measured on": "cuda:0 (NVIDIA H200), bf16",
    "Peak training memory": "1.50 GiB",
  });
  const exact = cardRows(card(), null).find((row) => row.label === "Parameters");
  assert.equal(exact?.title, "7,765,188 parameters");
});

test("a frozen encoder shows as the trainable share", () => {
  const rows = byLabel(cardRows(card({ trainable_parameters: 3_106_075 }), null));
  assert.equal(rows["Trainable parameters"], "3.1 M (40% of all)");
});

test("an encoder frozen for the first epochs only: the count says which epochs it holds for", () => {
  const frozen = cardRows(card({ trainable_parameters: 3_106_075 }), null, 1).find((row) => row.label === "Trainable parameters");
  assert.equal(frozen?.value, "3.1 M (40%) in epoch 1, then all");
  assert.match(frozen?.title ?? "", /all 7,765,188 from epoch 2 on/);
  const rows = byLabel(cardRows(card({ trainable_parameters: 3_106_075 }), null, 3));
  assert.equal(rows["Trainable parameters"], "3.1 M (40%) in epochs 1–3, then all");
});

test("measurements that failed and a run without a card read 'not measured', never throw", () => {
  const rows = byLabel(cardRows(card({ flops: null, latency_ms_batch: null, images_per_s: null }), null));
  assert.equal(rows["FLOPs per image at 256 × 320"], NOT_MEASURED);
  assert.equal(rows["Latency, batch 8"], NOT_MEASURED);
  assert.equal(rows["Throughput"], NOT_MEASURED);
  assert.equal(rows["Peak training memory"], NOT_MEASURED);
  assert.deepEqual(cardRows(null, null), []);
  assert.deepEqual(cardRows(undefined, 200), [
    { label: "Peak training memory", value: "200 MiB", title: "200.0 MiB: the largest train/peak_memory_mib so far" },
  ]);
});

test("the peak training memory is the largest value of train/peak_memory_mib so far", () => {
  const summary = { last_step: 3, last_value: 410, min_value: 380, max_value: 512, count: 3 };
  assert.equal(peakMemoryMib({ "train/peak_memory_mib": summary, "val/iou": { ...summary, max_value: 0.9 } }), 512);
  assert.equal(peakMemoryMib({ "val/iou": summary }), null);
  assert.equal(peakMemoryMib(null), null);
  assert.equal(peakMemoryMib(undefined), null);
});
