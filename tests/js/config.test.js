// Configs as text (table cells, YAML, diffs) and the schema's labels and bounds for the form.
import { test } from "node:test";
import assert from "node:assert/strict";

import { bounds, capitalised, helpText, labelOf, variant } from "../../web/static/js/pure/config_schema.js";
import { differingKeys, grouped, show, yaml } from "../../web/static/js/pure/config_text.js";

test("show: strings as they are, everything else as JSON", () => {
  assert.equal(show("unet"), "unet");
  assert.equal(show(3e-4), "0.0003");
  assert.equal(show(true), "true");
  assert.equal(show([256, 256]), "[256,256]");
  assert.equal(show(null), "null");
  assert.equal(show(undefined), "null");
});

test("grouped follows the schema's group and field order; unknown keys go last", () => {
  const schema = { groups: ["data", "model", "empty"], properties: { dataset: { group: "data" }, model: { group: "model" } } };
  assert.deepEqual(grouped({ model: "unet", extra: 1, dataset: "demo" }, schema), [
    ["data", [["dataset", "demo"]]], ["model", [["model", "unet"]]], ["other", [["extra", 1]]],
  ]);
  assert.deepEqual(grouped({ a: 1 }, null, "parameters"), [["parameters", [["a", 1]]]]);
});

test("YAML that reads back as the config", () => {
  const text = yaml({
    model: "unet", learning_rate: 0.0003, amp: false, image_size: [256, 256], name: "yes", empty: [],
    augment: [{ name: "HorizontalFlip", p: 0.5 }], nested: { a: null, b: "x y" },
  });
  assert.equal(text, [
    "model: unet",
    "learning_rate: 0.0003",
    "amp: false",
    "image_size: [256, 256]",
    'name: "yes"',
    "empty: []",
    "augment:",
    "  - name: HorizontalFlip",
    "    p: 0.5",
    "nested:",
    "  a: null",
    '  b: "x y"',
    "",
  ].join("\n"));
});

test("differing keys: a missing key differs from a present one", () => {
  assert.deepEqual(differingKeys([{ lr: 1, a: 1, b: [1] }, { lr: 2, a: 1, b: [1], c: null }, { lr: 1, a: 1, b: [1] }]), ["lr"]);
  assert.deepEqual(differingKeys([{ a: 1 }, { b: 1 }]), ["a", "b"]);
  assert.deepEqual(differingKeys([{ a: 1 }]), []);
});

test("labels, nullable variants, bounds and help from the schema", () => {
  assert.equal(labelOf("min_lr"), "Min LR");
  assert.equal(labelOf("gpus"), "GPUs");
  assert.equal(capitalised("advanced"), "Advanced");
  const nullableInt = { anyOf: [{ type: "integer", minimum: 1 }, { type: "null" }] };
  assert.deepEqual(variant(nullableInt), { base: { type: "integer", minimum: 1 }, nullable: true });
  assert.deepEqual(variant({ type: "number" }), { base: { type: "number" }, nullable: false });
  const union = { anyOf: [{ type: "string" }, { type: "array" }] };
  assert.deepEqual(variant(union), { base: union, nullable: false });
  assert.equal(bounds({ minimum: 0, exclusiveMaximum: 1 }), "≥ 0, < 1");
  assert.equal(bounds({}), "");
  assert.equal(helpText({ description: "Steps" }, "≥ 1"), "Steps. ≥ 1");
  assert.equal(helpText({}, ""), "");
});
