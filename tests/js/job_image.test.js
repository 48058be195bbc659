// The run page's predict-from-checkpoint and cancel helpers: the checkpoint nearest an epoch is
// the one the server picks, pending jobs read as progress, only queued or running jobs cancel.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  anyPending,
  cancellable,
  describeRequest,
  describeResult,
  nearestCheckpoint,
  progressText,
} from "../../web/static/js/pure/job_summary.js";

const kept = [{ kind: "best", epoch: 3 }, { kind: "last", epoch: 5 }];

test("the checkpoint nearest an epoch is used, best on a tie", () => {
  assert.equal(nearestCheckpoint(kept, 1)?.kind, "best");
  assert.equal(nearestCheckpoint(kept, 4)?.kind, "best");
  assert.equal(nearestCheckpoint([...kept].reverse(), 4)?.kind, "best");
  assert.equal(nearestCheckpoint(kept, 5)?.kind, "last");
  assert.equal(nearestCheckpoint(kept, 40)?.epoch, 5);
  assert.equal(nearestCheckpoint([], 4), null);
  assert.equal(nearestCheckpoint([{ kind: "other", epoch: 4 }], 4), null);
});

test("a validation image's job reads as its image and the weights' epoch", () => {
  const job = {
    kind: "predict_image",
    status: "succeeded",
    parameters: { image_index: 7, image_name: "cat_7", checkpoint: "last", checkpoint_epoch: 5 },
    result: { epoch: 5, width: 32, height: 24, classes_present: ["background", "cat"] },
  };
  assert.equal(describeRequest(job), "validation image cat_7 (#7), last checkpoint (epoch 5)");
  assert.equal(describeResult(job), "32×24 prediction with the weights of epoch 5; classes predicted: background, cat");
});

test("pending jobs read as progress; only queued and running ones cancel", () => {
  const of = (/** @type {string} */ status) => ({ kind: "export", status, parameters: {}, result: null });
  assert.match(progressText(of("queued")), /waiting for a free worker slot/);
  assert.match(progressText(of("running")), /running/);
  assert.match(progressText(of("cancelling")), /cancelled/);
  assert.ok(anyPending([of("cancelling")]));
  assert.ok(!anyPending([of("cancelled"), of("succeeded")]));
  assert.deepEqual(["queued", "running", "cancelling", "cancelled", "failed"].map((s) => cancellable(of(s))),
    [true, true, false, false, false]);
});
