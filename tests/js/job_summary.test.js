// What the run page says about evaluate, predict and export jobs.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  anyPending,
  describeRequest,
  describeResult,
  perClassRows,
  summaryRows,
} from "../../web/static/js/pure/job_summary.js";

const evaluation = {
  kind: "evaluate",
  status: "succeeded",
  parameters: { checkpoint: "best", dataset: "shapes", split: "test" },
  result: {
    split: "test",
    epoch: 3,
    num_images: 2,
    metrics: { "test/iou": 0.81234, "test/dice": 0.9, "test/loss": 0.2, "test/iou/fg": 0.81234 },
    per_class: [
      { class: "background", iou: 0.95, dice: 0.97, precision: 0.99, recall: 0.96 },
      { class: "fg", iou: null, dice: null, precision: null, recall: null },
    ],
  },
};

test("requests read as the checkpoint and what it works on", () => {
  assert.equal(describeRequest(evaluation), "best checkpoint, test split of shapes");
  assert.equal(
    describeRequest({ kind: "export", status: "queued", parameters: { checkpoint: "last", format: "torchscript" }, result: null }),
    "last checkpoint, TorchScript",
  );
  assert.equal(
    describeRequest({ kind: "predict", status: "queued", parameters: { checkpoint: "best", upload: "ab", tta: true }, result: null }),
    "best checkpoint, uploaded images, flip TTA",
  );
});

test("results read in one line, and nothing before a job succeeded", () => {
  assert.equal(describeResult(evaluation), "test/iou 0.8123, test/dice 0.9000 on 2 images (epoch 3)");
  const exported = { kind: "export", status: "succeeded", parameters: {}, result: { format: "onnx", max_abs_diff: { "32x32": 1e-6, "59x45": 3e-6 } } };
  assert.equal(describeResult(exported), "ONNX, matches PyTorch within 3.0e-6");
  const traced = { ...exported, result: { format: "torchscript", max_abs_diff: { "32x32": 0, "59x45": 0 } } };
  assert.equal(describeResult(traced), "TorchScript, matches PyTorch exactly");
  assert.equal(describeResult({ ...exported, result: { format: "onnx" } }), "ONNX");
  const predicted = { kind: "predict", status: "succeeded", parameters: {}, result: { count: 1, tta: false } };
  assert.equal(describeResult(predicted), "1 mask");
  assert.equal(describeResult({ ...evaluation, status: "running" }), "");
});

test("an evaluation's tables list its summary and every class, undefined scores as a dash", () => {
  assert.deepEqual(summaryRows(evaluation.result), [
    ["test/iou", "0.8123"],
    ["test/dice", "0.9000"],
    ["test/loss", "0.2000"],
  ]);
  assert.deepEqual(perClassRows(evaluation.result), [
    ["background", "0.9500", "0.9700", "0.9900", "0.9600"],
    ["fg", "–", "–", "–", "–"],
  ]);
});

test("the list is read again while a job is queued or running", () => {
  assert.equal(anyPending([evaluation]), false);
  assert.equal(anyPending([evaluation, { ...evaluation, status: "queued" }]), true);
});
