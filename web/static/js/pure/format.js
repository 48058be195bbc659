// Numbers, durations, sizes and counts as the pages print them.

/** @typedef {number | null | undefined} MaybeNumber */

/**
 * A fixed number of decimals; "–" for a missing value.
 * @param {MaybeNumber} value
 * @param {number} [digits]
 */
export function formatNumber(value, digits = 4) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return Number(value).toFixed(digits);
}

/**
 * A run's duration: "45s", "12m 30s", "3h 5m".
 * @param {MaybeNumber} seconds
 */
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

/**
 * "12 s", "4 min", "3 h 5 min", "2 d 4 h" for a number of seconds (negative counts as 0).
 * @param {MaybeNumber} seconds
 */
export function shortDuration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "–";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

/**
 * Seconds from an ISO time to `now` (milliseconds since the epoch); null without a time.
 * @param {string | null | undefined} iso
 * @param {number} [now]
 */
export function secondsSince(iso, now = Date.now()) {
  return iso ? (now - Date.parse(iso)) / 1000 : null;
}

/**
 * A local date and time; "–" without one.
 * @param {string | null | undefined} iso
 */
export function formatTime(iso) {
  return iso ? new Date(iso).toLocaleString() : "–";
}

/**
 * A metric value with four significant digits, exponent form when very small or large.
 * @param {MaybeNumber} value
 */
export function formatValue(value) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  const size = Math.abs(value);
  if (size !== 0 && (size < 1e-3 || size >= 1e5)) return value.toExponential(2);
  return String(Number(value.toPrecision(4)));
}

/** @type {Array<[string, number]>} */
const TIME_UNITS = [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]];

/**
 * Seconds as elapsed time from the largest unit down to the last one that is not zero, later
 * units two digits wide: 0, 45s, 1m30s, 1h05m, 1h00m03s, 2d03h.
 * @param {MaybeNumber} seconds
 */
export function formatElapsed(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  let rest = Math.round(Math.abs(seconds));
  if (rest === 0) return "0";
  const parts = [];
  for (const [name, size] of TIME_UNITS) {
    const count = Math.floor(rest / size);
    rest -= count * size;
    if (parts.length) parts.push(`${String(count).padStart(2, "0")}${name}`);
    else if (count) parts.push(`${count}${name}`);
    if (parts.length && rest === 0) break;
  }
  return `${seconds < 0 ? "-" : ""}${parts.join("")}`;
}

/**
 * 812, 16.6 k, 7.8 M, 1.2 B
 * @param {number} value
 */
export function compactCount(value) {
  /** @type {Array<[number, string]>} */
  const units = [[1e9, "B"], [1e6, "M"], [1e3, "k"]];
  for (const [size, unit] of units) {
    if (Math.abs(value) >= size) return `${(value / size).toFixed(1)} ${unit}`;
  }
  return String(value);
}

/**
 * 812 B, 16.6 KiB, 7.8 MiB, 1.2 GiB
 * @param {number} bytes
 */
export function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  let value = bytes;
  let unit = "B";
  for (const next of ["KiB", "MiB", "GiB", "TiB"]) {
    if (value < 1024) break;
    value /= 1024;
    unit = next;
  }
  return `${value.toFixed(1)} ${unit}`;
}

/**
 * A share (0..1) as a percentage: two decimals below 1 %, one above; "–" when missing.
 * @param {MaybeNumber} share
 */
export function percent(share) {
  return share === undefined || share === null ? "–" : `${(share * 100).toFixed(share < 0.01 ? 2 : 1)}%`;
}

/**
 * 1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st
 * @param {number} n
 */
export function ordinal(n) {
  const tens = n % 100;
  /** @type {Record<number, string>} */
  const suffixes = { 1: "st", 2: "nd", 3: "rd" };
  const suffix = tens >= 11 && tens <= 13 ? "th" : suffixes[n % 10] || "th";
  return `${n}${suffix}`;
}

/**
 * "1 run", "3 runs"
 * @param {number} n
 * @param {string} noun
 */
export function plural(n, noun) {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}
