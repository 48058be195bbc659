// Reading typed values from form text, and placing an API error's problems.
import { test } from "node:test";
import assert from "node:assert/strict";

import { apiProblems, parseList, parseNumber, parsePair } from "../../web/static/js/pure/form_values.js";

test("numbers, whole numbers and what is wrong with the rest", () => {
  assert.deepEqual(parseNumber("3e-4"), { value: 0.0003 });
  assert.deepEqual(parseNumber("2.5", true), { problem: '"2.5" is not a whole number' });
  assert.deepEqual(parseNumber("abc"), { problem: '"abc" is not a number' });
  assert.deepEqual(parseNumber(""), { problem: '"" is not a number' });
});

test("comma-separated lists", () => {
  assert.deepEqual(parseList(" a, b ", "string"), { value: ["a", "b"] });
  assert.deepEqual(parseList("1, 2,3", "integer"), { value: [1, 2, 3] });
  assert.deepEqual(parseList("1, 2.5", "integer"), { problem: '"2.5" is not a whole number' });
  assert.deepEqual(parseList("1,,2", "number"), { problem: "remove the empty entry between commas" });
  assert.deepEqual(parseList("  ", "number"), { value: [] });
  assert.deepEqual(parseList("", "number", true), { value: null });
});

test("pairs: both or neither", () => {
  const labels = ["height", "width"];
  assert.deepEqual(parsePair("256", " 128", labels), { value: [256, 128] });
  assert.deepEqual(parsePair("", "", labels), { value: null });
  assert.deepEqual(parsePair("256", "", labels), { problem: "give both height and width, or leave both empty" });
  assert.deepEqual(parsePair("1.5", "2", labels), { problem: '"1.5" is not a whole number' });
});

test("an API error's problems go to their fields", () => {
  const invalid = { code: "invalid", message: "2 problems", details: [{ field: "config.lr", message: "too big" }] };
  assert.deepEqual(apiProblems(invalid, "dataset"), [{ field: "config.lr", message: "too big" }]);
  const rejected = { code: "dataset_rejected", message: "bad data", details: { errors: ["no masks/"] } };
  assert.deepEqual(apiProblems(rejected, "dataset"), [{ field: "dataset", message: "inspection: no masks/" }]);
  const noReport = { code: "dataset_rejected", message: "bad data" };
  assert.deepEqual(apiProblems(noReport, "path"), [{ field: "path", message: "inspection: bad data" }]);
  assert.deepEqual(apiProblems({ code: "path_not_allowed", message: "outside" }, "path"), [{ field: "path", message: "outside" }]);
  assert.deepEqual(apiProblems({ code: "conflict", message: "taken" }, "path"), [{ field: null, message: "taken" }]);
});
