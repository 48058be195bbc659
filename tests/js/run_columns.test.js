// The runs table's chosen columns: their list, the choices keys offer, headers, sorting clicks,
// cells, group headers and live metric points.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  cellText, columnChoices, columnTitle, descendingFirst, foldMetricPoints, groupKey, groupLabel,
  quoteKey, sortAfterClick, splitColumns, tagKeys, tagValue,
} from "../../web/static/js/pure/run_columns.js";

test("a column list splits on commas outside backticks, blanks and repeats dropped", () => {
  assert.deepEqual(splitColumns("config.lr, metrics.`a,b`.max,,config.lr"), ["config.lr", "metrics.`a,b`.max"]);
  assert.deepEqual(splitColumns(""), []);
  assert.deepEqual(splitColumns(null), []);
});

test("keys are bare when the language allows it, else in backticks", () => {
  assert.equal(quoteKey("val/iou"), "val/iou");
  assert.equal(quoteKey("val/iou/road sign"), "`val/iou/road sign`");
});

test("the keys runs have offer config, parameter, best and last metric, and tag columns", () => {
  const choices = columnChoices({ config: ["learning_rate"], params: [], metrics: ["val/iou"], tags: ["lr"] });
  assert.deepEqual(choices, [
    { group: "Config", columns: ["config.learning_rate"] },
    { group: "Metrics", columns: ["metrics.val/iou.best", "metrics.val/iou.last"] },
    { group: "Tags", columns: ["tag.lr"] },
  ]);
});

test("a header names the column's source apart from its key", () => {
  assert.deepEqual(columnTitle("config.learning_rate"), { source: "config", name: "learning_rate" });
  assert.deepEqual(columnTitle("metrics.`a b`.max"), { source: "metrics", name: "a b.max" });
  assert.deepEqual(columnTitle("status"), { source: "", name: "status" });
});

test("a click sorts metrics best first, the rest ascending, and a second click turns it", () => {
  assert.equal(descendingFirst("metrics.val/iou.best"), true);
  assert.equal(descendingFirst("metrics.val/loss.best"), false);
  assert.equal(descendingFirst("config.learning_rate"), false);
  assert.equal(sortAfterClick("-created_at", "config.lr", false), "config.lr");
  assert.equal(sortAfterClick("config.lr", "config.lr", false), "-config.lr");
  assert.equal(sortAfterClick("-config.lr", "config.lr", false), "config.lr");
  assert.equal(sortAfterClick("config.lr", "metrics.val/iou.best", true), "-metrics.val/iou.best");
});

test("cells show numbers compactly, text as it is and the rest as JSON", () => {
  assert.equal(cellText(null), "–");
  assert.equal(cellText(undefined), "–");
  assert.equal(cellText(16), "16");
  assert.equal(cellText(0.0001), "1e-4");
  assert.equal(cellText(0.000123456), "1.235e-4");
  assert.equal(cellText(0.123456), "0.1235");
  assert.equal(cellText(0), "0");
  assert.equal(cellText("unet++"), "unet++");
  assert.equal(cellText(true), "true");
  assert.equal(cellText([1, 2]), "[1,2]");
});

test("group headers name the field, the value and the count", () => {
  assert.equal(groupLabel("config.model", "unet", 12), "config.model = unet · 12 runs");
  assert.equal(groupLabel("status", null, 1), "status = (none) · 1 run");
  assert.equal(groupLabel("config.seed", 3, undefined), "config.seed = 3");
  assert.notEqual(groupKey(1), groupKey("1"));
  assert.equal(groupKey(undefined), groupKey(null));
});

test("live points move last to the newest step and best, min and max to the extremes", () => {
  const columns = ["metrics.val/iou.last", "metrics.val/iou.best", "metrics.val/loss.best", "metrics.val/loss.max", "config.lr"];
  const steps = new Map([["val/iou", 3]]);
  const before = { "metrics.val/iou.last": 0.5, "metrics.val/iou.best": 0.6, "metrics.val/loss.best": null, "metrics.val/loss.max": 1, "config.lr": 0.1 };
  const after = foldMetricPoints(before, columns, [
    { key: "val/iou", step: 2, value: 0.9 },
    { key: "val/iou", step: 4, value: 0.55 },
    { key: "val/loss", step: 4, value: 0.7 },
  ], steps);
  assert.deepEqual(after, { "metrics.val/iou.last": 0.55, "metrics.val/iou.best": 0.9, "metrics.val/loss.best": 0.7, "metrics.val/loss.max": 1, "config.lr": 0.1 });
  assert.equal(steps.get("val/iou"), 4);
  assert.equal(steps.get("val/loss"), 4);
  assert.equal(before["metrics.val/iou.last"], 0.5, "the row's values are not changed in place");
});

test("key:value tags: their keys, and a run's value of one", () => {
  assert.deepEqual(tagKeys([["lr=1e-3", "baseline"], ["bs=8", "lr=0.01", "=odd"]]), ["bs", "lr"]);
  assert.equal(tagValue(["lr=1e-3", "baseline"], "lr"), "1e-3");
  assert.equal(tagValue(["lr=b", "lr=a"], "lr"), "a", "the first in sorted order, as the list reads it");
  assert.equal(tagValue(["baseline"], "lr"), null);
});
