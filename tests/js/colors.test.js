// Colour parsing, the class palette the pages fall back to, and the colours of compared runs.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  FIRST_COLORS, defaultPalette, hsvToHex, isHex, parseHex, runColors, safeColor, withAlpha,
} from "../../web/static/js/pure/colors.js";

test("parseHex reads #rrggbb in any case and nothing else", () => {
  assert.deepEqual(parseHex("#e6194B"), [230, 25, 75]);
  for (const bad of ["e6194b", "#e6194", "#e6194bff", "red", "", null, undefined, "#ggg000"]) {
    assert.equal(parseHex(bad), null, String(bad));
  }
  assert.equal(isHex("#000000"), true);
  assert.equal(isHex(0), false);
});

test("only #rrggbb reaches a style attribute", () => {
  assert.equal(safeColor("#123abc"), "#123abc");
  assert.equal(safeColor("red;background:url(x)"), "#808080");
  assert.equal(safeColor(null), "#808080");
});

test("the default palette starts with the trainer's colours and stays distinct", () => {
  assert.deepEqual(defaultPalette(3), FIRST_COLORS.slice(0, 3));
  const many = defaultPalette(40);
  assert.equal(many.length, 40);
  assert.equal(new Set(many).size, 40);
  assert.ok(many.every(isHex));
  assert.deepEqual(defaultPalette(0), []);
});

test("hsvToHex at the primaries", () => {
  assert.equal(hsvToHex(0, 1, 1), "#ff0000");
  assert.equal(hsvToHex(1 / 3, 1, 1), "#00ff00");
  assert.equal(hsvToHex(2 / 3, 1, 1), "#0000ff");
  assert.equal(hsvToHex(0, 0, 0.5), "#808080");
});

test("withAlpha makes rgba of #rrggbb and leaves other colours alone", () => {
  assert.equal(withAlpha("#ff8000", 0.25), "rgba(255, 128, 0, 0.25)");
  assert.equal(withAlpha("steelblue", 0.25), "steelblue");
});

test("50 compared runs get 50 distinct colours, Tableau 10 first", () => {
  const colors = runColors(50);
  assert.equal(colors.length, 50);
  assert.equal(new Set(colors).size, 50);
  assert.equal(colors[0], "#1f77b4");
  assert.ok(colors.every(isHex));
  assert.deepEqual(runColors(2), ["#1f77b4", "#ff7f0e"]);
});
