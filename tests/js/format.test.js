// The numbers, durations and sizes the pages print.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  compactCount, formatBytes, formatDuration, formatElapsed, formatNumber, formatValue, ordinal, percent,
  plural, secondsSince, shortDuration,
} from "../../web/static/js/pure/format.js";

test("formatNumber: fixed decimals, a dash when missing", () => {
  assert.equal(formatNumber(0.123456), "0.1235");
  assert.equal(formatNumber(2, 1), "2.0");
  for (const missing of [null, undefined, NaN]) assert.equal(formatNumber(missing), "–");
});

test("formatDuration and shortDuration from seconds to days", () => {
  assert.equal(formatDuration(44.6), "45s");
  assert.equal(formatDuration(750), "12m 30s");
  assert.equal(formatDuration(3 * 3600 + 5 * 60 + 9), "3h 5m");
  assert.equal(formatDuration(null), "–");
  assert.equal(shortDuration(12), "12 s");
  assert.equal(shortDuration(-5), "0 s");
  assert.equal(shortDuration(240), "4 min");
  assert.equal(shortDuration(3 * 3600 + 300), "3 h 5 min");
  assert.equal(shortDuration(2 * 86400 + 4 * 3600), "2 d 4 h");
  assert.equal(shortDuration(undefined), "–");
});

test("secondsSince counts from an ISO time to now", () => {
  const now = Date.parse("2026-01-01T00:01:00Z");
  assert.equal(secondsSince("2026-01-01T00:00:00Z", now), 60);
  assert.equal(secondsSince(null, now), null);
});

test("formatValue: four significant digits, exponents for the very small and large", () => {
  assert.equal(formatValue(0.123456), "0.1235");
  assert.equal(formatValue(12), "12");
  assert.equal(formatValue(0), "0");
  assert.equal(formatValue(0.0003), "3.00e-4");
  assert.equal(formatValue(123456), "1.23e+5");
  assert.equal(formatValue(Infinity), "–");
  assert.equal(formatValue(null), "–");
});

test("formatElapsed: largest unit first, later ones two digits wide", () => {
  const cases = [[0, "0"], [45, "45s"], [90, "1m30s"], [3900, "1h05m"], [3603, "1h00m03s"],
    [2 * 86400 + 3 * 3600, "2d03h"], [-90, "-1m30s"], [0.4, "0"]];
  for (const [seconds, text] of cases) assert.equal(formatElapsed(seconds), text, String(seconds));
  assert.equal(formatElapsed(NaN), "–");
});

test("compactCount and formatBytes", () => {
  assert.equal(compactCount(812), "812");
  assert.equal(compactCount(16_600), "16.6 k");
  assert.equal(compactCount(7_800_000), "7.8 M");
  assert.equal(compactCount(1_200_000_000), "1.2 B");
  assert.equal(formatBytes(812), "812 B");
  assert.equal(formatBytes(17_000), "16.6 KiB");
  assert.equal(formatBytes(8 * 1024 ** 2), "8.0 MiB");
  assert.equal(formatBytes(1.5 * 1024 ** 4), "1.5 TiB");
});

test("percent, ordinal, plural", () => {
  assert.equal(percent(0.005), "0.50%");
  assert.equal(percent(0.25), "25.0%");
  assert.equal(percent(null), "–");
  assert.deepEqual([1, 2, 3, 4, 11, 12, 13, 21, 102, 111].map(ordinal),
    ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "102nd", "111th"]);
  assert.equal(plural(1, "run"), "1 run");
  assert.equal(plural(0, "run"), "0 runs");
});
