// The sweep part of the new-run form, DOM-free: a field's sweep setting (a list of values, or a
// range with min, max, log and optional steps) as a W&B-style `parameters` entry, and how many
// runs a grid over those entries makes.

import { variant } from "./config_schema.js";
import { parseList, parseNumber } from "./form_values.js";

/** The methods a sweep searches with. */
export const METHODS = /** @type {const} */ (["grid", "random", "bayes"]);
/** The most steps a range is cut into. */
export const MAX_STEPS = 1000;

/** @typedef {"integer" | "number" | "string" | "boolean"} ItemType */

/**
 * A field's sweep setting as typed.
 * @typedef {{mode: "values", text: string} |
 *   {mode: "range", min: string, max: string, log: boolean, steps: string}} SweepSetting
 */

/** A `parameters` entry. @typedef {{values: unknown[]} | {distribution: string, min: number, max: number}} ParameterSpec */

/**
 * A comma list of values of `itemType` ("true, false" for booleans).
 * @param {string} text
 * @param {ItemType} itemType
 * @returns {{value: unknown[]} | {problem: string}}
 */
export function parseValues(text, itemType) {
  if (itemType === "boolean") {
    const items = text.split(",").map((item) => item.trim().toLowerCase()).filter(Boolean);
    const wrong = items.find((item) => item !== "true" && item !== "false");
    if (wrong !== undefined) return { problem: `"${wrong}" is neither true nor false` };
    return checkValues(items.map((item) => item === "true"));
  }
  const read = parseList(text, itemType);
  if ("problem" in read) return read;
  return checkValues(/** @type {unknown[]} */ (read.value));
}

/** @param {unknown[]} values */
function checkValues(values) {
  if (!values.length) return { problem: "type the values to try, separated by commas" };
  if (new Set(values.map((value) => JSON.stringify(value))).size !== values.length) return { problem: "each value once: remove the repeated one" };
  return { value: values };
}

/**
 * `steps` values from min to max, evenly spaced (or geometrically when `log`); whole numbers are
 * rounded and repeats dropped.
 * @param {number} min
 * @param {number} max
 * @param {number} steps at least 2
 * @param {boolean} log
 * @param {boolean} integer
 * @returns {number[]}
 */
export function expandRange(min, max, steps, log, integer) {
  const values = [];
  for (let i = 0; i < steps; i++) {
    const t = i / (steps - 1);
    const value = log ? min * (max / min) ** t : min + (max - min) * t;
    values.push(integer ? Math.round(value) : Number(value.toPrecision(6)));
  }
  return [...new Set(values)];
}

/**
 * The `parameters` entry of a field's sweep setting.
 * @param {SweepSetting} setting
 * @param {ItemType} itemType
 * @returns {{value: ParameterSpec} | {problem: string}}
 */
export function parameterSpec(setting, itemType) {
  if (setting.mode === "values") {
    const read = parseValues(setting.text, itemType);
    return "problem" in read ? read : { value: { values: read.value } };
  }
  const integer = itemType === "integer";
  const min = parseNumber(setting.min.trim(), integer);
  if ("problem" in min) return { problem: `min: ${min.problem}` };
  const max = parseNumber(setting.max.trim(), integer);
  if ("problem" in max) return { problem: `max: ${max.problem}` };
  if (!(min.value < max.value)) return { problem: `min must be below max, got ${min.value} and ${max.value}` };
  if (setting.log && min.value <= 0) return { problem: `a log range needs min above 0, got ${min.value}` };
  if (setting.steps.trim() !== "") {
    const steps = parseNumber(setting.steps.trim(), true);
    if ("problem" in steps) return { problem: `steps: ${steps.problem}` };
    if (steps.value < 2 || steps.value > MAX_STEPS) return { problem: `steps: from 2 to ${MAX_STEPS}, got ${steps.value}` };
    return { value: { values: expandRange(min.value, max.value, steps.value, setting.log, integer) } };
  }
  if (integer && setting.log) return { problem: "a log range of whole numbers needs steps" };
  const distribution = setting.log ? "log_uniform_values" : integer ? "int_uniform" : "uniform";
  return { value: { distribution, min: min.value, max: max.value } };
}

/**
 * How many runs a grid over `parameters` makes, or why it cannot be a grid (a key drawn from a
 * continuous distribution).
 * @param {Record<string, ParameterSpec>} parameters
 * @returns {{count: number} | {problem: string, key: string}}
 */
export function gridSize(parameters) {
  let count = 1;
  for (const [key, spec] of Object.entries(parameters)) {
    if ("values" in spec) count *= spec.values.length;
    else if (spec.distribution === "int_uniform") count *= spec.max - spec.min + 1;
    else return { key, problem: `a grid takes values or whole-number ranges; give ${key} steps, or search with random or bayes` };
  }
  return { count };
}

/**
 * The sweep setting that lists a run's value and its neighbours: a log range from a tenth to
 * ten times a positive number, else the value itself as the only value to start from.
 * @param {unknown} value
 * @returns {SweepSetting}
 */
export function settingAround(value) {
  if (typeof value === "number" && value > 0 && !Number.isInteger(value)) {
    return { mode: "range", min: String(Number((value / 10).toPrecision(6))), max: String(Number((value * 10).toPrecision(6))), log: true, steps: "" };
  }
  return { mode: "values", text: value === null || value === undefined ? "" : String(value) };
}

/**
 * `value` rounded to 3 significant digits, as a setting's text shows it.
 * @param {number} value
 */
function short(value) {
  return String(Number(value.toPrecision(3)));
}

/**
 * The fields a sweep around a run searches and how, from the values the run set: the learning
 * rate on a log range from a tenth to ten times its value (what bayes draws from), the batch
 * size at half, the same and twice its value, a positive weight decay at a tenth, the same and
 * ten times (zero: 0, 1e-5, 1e-4), and with sgd or rmsprop (the optimizers that use it) its
 * momentum at its value and either side of it. Fields the run does not hold, or holds no number
 * for, are left out.
 * @param {Record<string, unknown>} config
 * @returns {Record<string, SweepSetting>}
 */
export function neighbourhood(config) {
  /** @type {Record<string, SweepSetting>} */
  const around = {};
  const number = (/** @type {string} */ key) => {
    const value = config[key];
    return typeof value === "number" && Number.isFinite(value) ? value : null;
  };
  /** @param {number[]} values */
  const values = (values) => ({ mode: /** @type {const} */ ("values"), text: [...new Set(values.map(short))].join(", ") });
  const lr = number("learning_rate");
  if (lr !== null && lr > 0) around.learning_rate = settingAround(lr);
  const batch = number("batch_size");
  if (batch !== null && Number.isInteger(batch) && batch >= 1) {
    around.batch_size = values([Math.max(1, Math.round(batch / 2)), batch, batch * 2]);
  }
  const decay = number("weight_decay");
  if (decay !== null && decay > 0) around.weight_decay = values([decay / 10, decay, decay * 10]);
  else if (decay === 0) around.weight_decay = values([0, 1e-5, 1e-4]);
  const momentum = number("momentum");
  if (momentum !== null && momentum > 0 && momentum < 1 && ["sgd", "rmsprop"].includes(String(config.optimizer))) {
    const gap = Math.min(0.05, (1 - momentum) / 2, momentum / 2);
    around.momentum = values([momentum - gap, momentum, momentum + gap]);
  }
  return around;
}

/**
 * The type of the values a config property is swept over, or null when the form does not sweep
 * it (lists, mappings, mixed types: a spec file can).
 * @param {import("./config_schema.js").SchemaProperty} prop
 * @returns {ItemType | null}
 */
export function sweepItemType(prop) {
  const { base } = variant(prop);
  if (base.enum) return "string";
  if (base.type === "integer" || base.type === "number" || base.type === "boolean" || base.type === "string") return base.type;
  return null;
}

/**
 * The spec's keys from the sweep settings as read: metric, goal and target as `metric`, the
 * early-termination type and its options as `early_terminate`, the seed as `seed`.
 * @param {Record<string, any>} settings
 */
export function specSettings(settings) {
  /** @type {Record<string, any>} */
  const spec = {};
  for (const key of ["method", "max_runs", "parallel"]) if (key in settings) spec[key] = settings[key];
  if ("sweep_seed" in settings) spec.seed = settings.sweep_seed;
  spec.metric = { name: settings.metric, goal: settings.goal };
  if ("target" in settings) spec.metric.target = settings.target;
  const type = settings.early_terminate;
  if (type && type !== "none") {
    spec.early_terminate = { type };
    for (const [name, value] of Object.entries(settings)) {
      if (name.startsWith("et_")) spec.early_terminate[name.slice(3)] = value;
    }
  }
  return spec;
}
