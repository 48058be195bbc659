// The compare page's test results: which columns, one row per evaluated run at its evaluated
// epoch, the best of each column, and the evaluate job whose files the row links to.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  TEST_FILES, bestValues, fileUrl, isTestKey, jobLink, testColumns, testEvaluation, testRows,
} from "../../web/static/js/pure/test_results.js";

/** @param {number} step @param {number} value */
const at = (step, value) => ({ last_step: step, last_value: value, min_value: value, max_value: value, count: 1 });

const runs = [
  {
    id: 1, class_names: ["background", "road", "car"], metrics: {
      "val/iou": at(10, 0.7), "test/iou": at(7, 0.61), "test/loss": at(7, 0.4), "test/iou/car": at(7, 0.5),
      "test/iou/road": at(7, 0.72), "test/iou/background": at(7, 0.9), "test/dice/car": at(7, 0.66),
    },
  },
  { id: 2, class_names: ["background", "road", "car"], metrics: { "val/iou": at(10, 0.8) } },
  {
    id: 3, class_names: ["background", "road", "car"], metrics: {
      // Evaluated at epoch 4 and then at 9: the row shows epoch 9's.
      "test/iou": at(9, 0.66), "test/loss": at(9, 0.5), "test/iou/car": at(4, 0.3), "test/iou/road": at(9, 0.7),
      "test/iou/bike": at(9, 0.1),
    },
  },
];

test("columns: the summary keys present, then per-class IoU in class order", () => {
  assert.ok(isTestKey("test/iou") && !isTestKey("val/iou"));
  assert.deepEqual(testColumns(runs), [
    "test/iou", "test/loss", "test/iou/background", "test/iou/road", "test/iou/car", "test/iou/bike",
  ]);
  assert.deepEqual(testColumns([runs[1]]), []);
});

test("rows: one per run with test metrics, at its latest evaluated epoch", () => {
  const columns = testColumns(runs);
  const rows = testRows(runs, columns);
  assert.deepEqual(rows.map((row) => [row.runId, row.epoch]), [[1, 7], [3, 9]]);
  assert.deepEqual(rows[1].values, { "test/iou": 0.66, "test/loss": 0.5, "test/iou/road": 0.7, "test/iou/bike": 0.1 });
  assert.equal(rows[0].values["test/iou/car"], 0.5);
  assert.deepEqual(bestValues(rows, columns), {
    "test/iou": 0.66, "test/loss": 0.4, "test/iou/road": 0.72,
  });
});

test("the evaluation a row links to: the latest succeeded test-split evaluate job of that epoch", () => {
  const file = (/** @type {number} */ id, /** @type {string} */ name) => ({ name, url: `/api/v1/jobs/${id}/files/${name}` });
  const job = (/** @type {number} */ id, /** @type {Record<string, any>} */ fields) => ({
    id, kind: "evaluate", status: "succeeded", result: { split: "test", epoch: 7 },
    files: [file(id, TEST_FILES.confusion), file(id, TEST_FILES.perImage)], ...fields,
  });
  const jobs = [
    job(3, {}),
    job(5, {}),
    job(6, { result: { split: "val", epoch: 7 } }),
    job(7, { status: "failed", result: null }),
    job(8, { result: { split: "test", epoch: 4 } }),
    job(9, { kind: "export", result: { format: "onnx" } }),
  ];
  const chosen = testEvaluation(jobs, 7);
  assert.equal(chosen?.id, 5);
  assert.equal(fileUrl(chosen, TEST_FILES.confusion), "/api/v1/jobs/5/files/confusion_matrix.csv");
  assert.equal(fileUrl(chosen, "model.onnx"), null);
  assert.equal(testEvaluation(jobs, 2), null);
  assert.equal(fileUrl(null, TEST_FILES.perImage), null);
  assert.equal(jobLink(3, chosen), "/runs/3#job-5");
  assert.equal(jobLink(3, null), "/runs/3#jobs-panel");
});
