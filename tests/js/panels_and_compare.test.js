// Which run-page panel a metric goes to; the compare page's address, groups and preview epochs;
// a dataset's facts.
import { test } from "node:test";
import assert from "node:assert/strict";

import { compareQuery, dataWarnings, groupRuns, parseIds, widthChanged } from "../../web/static/js/pure/compare_state.js";
import { datasetFacts, reportSummary } from "../../web/static/js/pure/dataset_facts.js";
import { PANELS, panelOf, standardIndex, systemSeriesOf } from "../../web/static/js/pure/metric_panels.js";

test("metric keys find their panels", () => {
  assert.equal(panelOf("val/loss").id, "loss");
  assert.equal(panelOf("val/miou").id, "scores");
  assert.equal(panelOf("val/iou/car").id, "per-class");
  assert.equal(panelOf("val/dice/car"), null, "Dice per class is in the table only");
  assert.equal(panelOf("train/loss_step").x, "step");
  assert.deepEqual(panelOf("my/metric"), { id: "key:my/metric", title: "my/metric", keys: ["my/metric"] });
});

test("system keys go to the System group, one series per GPU", () => {
  const memory = panelOf("sys/gpu1/memory_total_mb");
  assert.equal(memory.id, "sys-gpu-memory");
  assert.equal(memory.system, true);
  assert.deepEqual(systemSeriesOf(memory, "sys/gpu1/memory_total_mb"), { label: "GPU 1 total", gpu: 1, dash: [6, 4] });
  assert.deepEqual(systemSeriesOf(panelOf("sys/gpu0/power_w"), "sys/gpu0/power_w"), { label: "GPU 0", gpu: 0 });
  const unknown = panelOf("sys/fan_rpm");
  assert.deepEqual(unknown, { id: "key:sys/fan_rpm", title: "sys/fan_rpm", keys: ["sys/fan_rpm"], system: true });
  assert.deepEqual(systemSeriesOf(unknown, "sys/fan_rpm"), { label: "sys/fan_rpm" });
  assert.equal(standardIndex(panelOf("sys/cpu_percent")), 2);
  assert.equal(standardIndex(PANELS[1]), 1);
  assert.equal(standardIndex(unknown), -1);
});

test("compare ids: positive integers, once each, in order", () => {
  assert.deepEqual(parseIds("3, 1,3,x,-2,0,1.5,,7"), [3, 1, 7]);
  assert.deepEqual(parseIds(null), []);
});

test("a compare view's address leaves defaults out", () => {
  const view = { ids: [1, 2], keys: ["val/iou"], groupKey: "", groupMode: "value", epoch: null, previewMode: "prediction" };
  assert.equal(compareQuery(view).toString(), "ids=1%2C2&keys=val%2Fiou");
  const grouped = { ...view, groupKey: "lr", groupMode: "others", epoch: 4, previewMode: "errors" };
  assert.equal(compareQuery(grouped).toString(), "ids=1%2C2&keys=val%2Fiou&group=lr&mode=others&epoch=4&view=errors");
  assert.equal(compareQuery({ ...view, tagColumns: ["lr", "bs"] }).get("tags"), "lr,bs");
});

test("runs grouped by a key's value, or by everything else that differs", () => {
  const runs = ["a", "b", "c", "d"];
  const configs = [{ lr: 1, seed: 1 }, { lr: 2, seed: 1 }, { lr: 1, seed: 2 }, { lr: 2, seed: 2 }];
  assert.deepEqual(groupRuns(runs, configs, "lr", "value", ["lr", "seed"]), [
    { label: "lr=1", runs: ["a", "c"] }, { label: "lr=2", runs: ["b", "d"] },
  ]);
  assert.deepEqual(groupRuns(runs, configs, "lr", "others", ["lr", "seed"]), [
    { label: "seed=1", runs: ["a", "b"] }, { label: "seed=2", runs: ["c", "d"] },
  ]);
  assert.deepEqual(groupRuns(["a"], [{}], "lr", "others", ["lr"]), [{ label: "all runs", runs: ["a"] }]);
  assert.deepEqual(groupRuns(["a"], [{}], "lr", "value", ["lr"]), [{ label: "lr=null", runs: ["a"] }]);
});

test("a dataset in a few words", () => {
  const dataset = { num_pairs: 12, num_classes: 3, layout: "images-masks" };
  const report = { num_train: 10, num_val: 2, in_channels: 1,
    image_sizes: { min_height: 64, min_width: 64, max_height: 128, max_width: 96, all_equal: false } };
  assert.deepEqual(datasetFacts(dataset, report),
    ["12 pairs", "10 train / 2 val", "3 classes", "images-masks", "64×64 to 128×96 px", "1 channel"]);
  assert.deepEqual(datasetFacts(dataset), ["12 pairs", "3 classes", "images-masks"]);
  assert.deepEqual(reportSummary({ errors: ["x"], warnings: ["y", "z"] }), { text: "1 error, 2 warnings", kind: "bad" });
  assert.deepEqual(reportSummary({ warnings: ["y"] }), { text: "1 warning", kind: "warn" });
  assert.deepEqual(reportSummary(), { text: "no warnings", kind: "ok" });
});

test("runs on different datasets or class sets are warned about; runs that say nothing are left out", () => {
  const demo = { dataset_id: 1, dataset_name: "demo", class_names: ["background", "car"], config: { num_classes: 2 } };
  assert.deepEqual(dataWarnings([{ id: 1, ...demo }, { id: 2, ...demo }, { id: 3, config: null }]), []);
  const warnings = dataWarnings([
    { id: 1, ...demo }, { id: 2, ...demo },
    { id: 3, dataset_id: 2, dataset_name: "roads", class_names: ["background", "car", "road"] },
    { id: 4, dataset_id: null, config: { dataset: "/data/x", num_classes: 2 } },
  ]);
  assert.deepEqual(warnings, [
    "These runs used different datasets: demo (#1, #2); roads (#3); /data/x (#4). Their scores do not compare directly.",
    "These runs used different class sets: background, car (#1, #2); background, car, road (#3); 2 classes (#4). Per-class and mean scores cover different classes.",
  ]);
});

test("a chart asks for its series again only when its width strays from the points asked", () => {
  assert.equal(widthChanged(581, 593), false, "a dozen pixels more: a first guess, a scrollbar");
  assert.equal(widthChanged(581, 560), false);
  assert.equal(widthChanged(581, 700), true, "detail to gain");
  assert.equal(widthChanged(581, 400), true, "points to spare");
  assert.equal(widthChanged(0, 300), true, "never asked");
});
