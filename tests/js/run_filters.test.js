// The runs list's filters: the query string round trip, and matching a new run as the server would.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  emptyFilters, hasFilters, matches, parseCondition, parseTags, readQuery, writeQuery,
} from "../../web/static/js/pure/run_filters.js";

const RUN = {
  id: 7, name: "UNet baseline", status: "running", tags: ["baseline", "lr-sweep"], notes: "first try",
  model: "unet", dataset_name: "carvana", dataset_path: "/data/carvana", dataset_id: 3,
  metrics: { "val/iou": { last_value: 0.62 } },
};

test("filters and view survive the query string, unknown statuses and empty tags dropped", () => {
  const filters = {
    ...emptyFilters(), status: ["running", "failed"], tag: ["a b", "c"], q: "unet", metric: "val/iou > 0.5",
    filter: "config.learning_rate < 1e-3 or tag.lr = 1e-3",
  };
  const view = { sort: "-config.learning_rate", columns: ["config.learning_rate", "metrics.val/iou.best"], groupBy: "config.model" };
  const query = writeQuery(filters, view);
  assert.equal(query.get("columns"), "config.learning_rate,metrics.val/iou.best");
  assert.deepEqual(readQuery(new URLSearchParams(query.toString())), { filters, ...view });
  assert.deepEqual(readQuery(new URLSearchParams(writeQuery(filters, { sort: "name" }).toString())),
    { filters, sort: "name", columns: [], groupBy: "" });
  const read = readQuery(new URLSearchParams("status=bogus&status=queued&tag=&sort="));
  assert.deepEqual(read.filters.status, ["queued"]);
  assert.deepEqual(read.filters.tag, []);
  assert.equal(read.sort, "-created_at");
});

test("the default sort and empty filters leave the query empty", () => {
  assert.equal(writeQuery(emptyFilters()).toString(), "");
  assert.equal(hasFilters(emptyFilters()), false);
  assert.equal(hasFilters({ ...emptyFilters(), model: "unet" }), true);
  assert.equal(hasFilters({ ...emptyFilters(), filter: "config.seed = 1" }), true);
});

test("tags are comma-separated, blanks dropped", () => {
  assert.deepEqual(parseTags(" a, ,b ,"), ["a", "b"]);
});

test("metric conditions", () => {
  assert.deepEqual(parseCondition("val/iou >= 0.5"), { key: "val/iou", op: ">=", value: 0.5 });
  assert.deepEqual(parseCondition("train/loss<1e-2"), { key: "train/loss", op: "<", value: 0.01 });
  assert.equal(parseCondition("val/iou"), null);
  assert.equal(parseCondition("> 3"), null);
});

test("a run matches the filters the list endpoint would apply", () => {
  const with_ = (changes) => ({ ...emptyFilters(), ...changes });
  assert.ok(matches(RUN, emptyFilters()));
  assert.ok(matches(RUN, with_({ status: ["queued", "running"] })));
  assert.ok(!matches(RUN, with_({ status: ["failed"] })));
  assert.ok(matches(RUN, with_({ tag: ["baseline", "lr-sweep"] })));
  assert.ok(!matches(RUN, with_({ tag: ["baseline", "other"] })));
  assert.ok(matches(RUN, with_({ dataset: "/data/carvana" })));
  assert.ok(matches(RUN, with_({ dataset: "3" })));
  assert.ok(!matches(RUN, with_({ model: "unet++" })));
  assert.ok(matches(RUN, with_({ q: "BASELINE" })));
  assert.ok(matches(RUN, with_({ q: "first" })));
  assert.ok(matches(RUN, with_({ q: "7" })));
  assert.ok(!matches(RUN, with_({ q: "deeplab" })));
  assert.ok(matches(RUN, with_({ metric: "val/iou > 0.6" })));
  assert.ok(!matches(RUN, with_({ metric: "val/iou >= 0.7" })));
  assert.ok(matches(RUN, with_({ metric: "val/iou != 0.7" })));
  assert.ok(!matches(RUN, with_({ metric: "val/dice > 0" })), "a metric the run lacks");
  assert.ok(!matches(RUN, with_({ metric: "nonsense" })));
});
