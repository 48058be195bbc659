// The new-run form's sweep mode: a "sweep" switch on each config field that can be swept, which
// swaps the field's control for a list of values (typed as a comma list, or ticked among a
// select's choices) or a range (min, max, log, steps), with a live count of the runs a grid
// makes.

import { el } from "./dom.js";
import { METHODS, gridSize, parameterSpec, sweepItemType } from "./pure/sweep_spec.js";

/**
 * One field's sweep switch and editor; it shows problems in the field's own error slot.
 * @typedef {object} SweepSwitch
 * @property {string} name the config key
 * @property {HTMLInputElement} toggle
 * @property {() => boolean} on
 * @property {() => ({value: import("./pure/sweep_spec.js").ParameterSpec} | {problem: string})} read
 * @property {(setting: import("./pure/sweep_spec.js").SweepSetting | null) => void} set null: off
 * @property {HTMLElement} focusTarget
 */

/**
 * @param {import("./forms.js").Field} field
 * @param {import("./pure/sweep_spec.js").ItemType} itemType
 * @param {() => void} onChange
 * @returns {SweepSwitch}
 */
function sweepSwitch(field, itemType, onChange) {
  const id = `sweep-${field.name}`;
  const numeric = itemType === "integer" || itemType === "number";
  const toggle = el("input", { type: "checkbox", id, class: "sweep-toggle" });
  const mode = el("select", { id: `${id}-mode`, "aria-label": `How ${field.name} is swept` },
    el("option", { value: "values" }, "values"), numeric ? el("option", { value: "range" }, "range") : null);
  const values = el("input", { type: "text", id: `${id}-values`, autocomplete: "off", "aria-label": `${field.name} values`,
    placeholder: itemType === "boolean" ? "true, false" : numeric ? "e.g. 16, 32, 64" : "comma-separated" });
  // A select's choices are ticked rather than typed; the ticks write the values' text.
  const options = field.control instanceof HTMLSelectElement
    ? [...field.control.options].map((option) => option.value).filter((value) => value !== "") : [];
  const ticks = options.map((option) => el("input", { type: "checkbox", id: `${id}-choice-${option}`, value: option }));
  const choices = options.length
    ? el("span", { class: "sweep-choices", role: "group", "aria-label": `${field.name} values to try` },
      ticks.map((tick) => el("label", { for: tick.id }, tick, ` ${tick.value}`)))
    : null;
  const tickedText = () => ticks.filter((tick) => tick.checked).map((tick) => tick.value).join(", ");
  const showTicks = () => {
    const chosen = new Set(values.value.split(",").map((item) => item.trim()));
    for (const tick of ticks) tick.checked = chosen.has(tick.value);
  };
  for (const tick of ticks) tick.addEventListener("change", () => { values.value = tickedText(); onChange(); });
  if (choices) values.hidden = true;
  const number = (/** @type {string} */ part) => el("input", { type: "text", inputmode: "decimal", id: `${id}-${part}`, placeholder: part, "aria-label": `${field.name} ${part}`, class: "range-part" });
  const min = number("min");
  const max = number("max");
  const steps = el("input", { type: "text", inputmode: "numeric", id: `${id}-steps`, placeholder: "steps", "aria-label": `${field.name} steps`, class: "range-part", title: "Empty: drawn from the range (random or bayes); a number: that many values from min to max" });
  const log = el("input", { type: "checkbox", id: `${id}-log` });
  const range = el("span", { class: "sweep-range", hidden: true }, min, "–", max,
    el("label", { for: log.id }, log, " log"), steps);
  const editor = el("div", { class: "sweep-editor", hidden: true }, mode, values, choices, range);
  const label = el("label", { class: "sweep-switch", for: id, title: `Search over several values of ${field.name}` }, toggle, " sweep");
  field.element.classList.add("sweepable");
  field.element.insertBefore(label, field.element.children[1] || null);
  field.element.insertBefore(editor, field.element.querySelector(".help"));
  const show = () => {
    const swept = toggle.checked;
    editor.hidden = !swept;
    field.control.hidden = swept;
    field.element.classList.toggle("swept", swept);
    values.hidden = mode.value !== "values" || Boolean(choices);
    if (choices) choices.hidden = mode.value !== "values";
    range.hidden = mode.value !== "range";
    onChange();
  };
  toggle.addEventListener("change", () => {
    // Switched on with nothing typed yet: start from the field's own value.
    if (toggle.checked && !values.value) {
      const reading = current();
      if ("value" in reading && reading.value !== null && reading.value !== undefined) values.value = String(reading.value);
      showTicks();
    }
    show();
  });
  mode.addEventListener("change", show);
  for (const input of [values, min, max, steps, log]) input.addEventListener("input", onChange);
  const current = () => field.get();
  return {
    name: field.name,
    toggle,
    on: () => toggle.checked,
    read: () => parameterSpec(mode.value === "range"
      ? { mode: "range", min: min.value, max: max.value, log: log.checked, steps: steps.value }
      : { mode: "values", text: values.value }, itemType),
    set: (setting) => {
      toggle.checked = setting !== null;
      if (setting && setting.mode === "range" && numeric) {
        mode.value = "range";
        min.value = setting.min;
        max.value = setting.max;
        log.checked = setting.log;
        steps.value = setting.steps;
      } else if (setting) {
        mode.value = "values";
        if (setting.mode === "values") values.value = setting.text;
      }
      if (setting && setting.mode === "values" && !values.value) {
        const reading = current();
        if ("value" in reading && reading.value !== null) values.value = String(reading.value);
      }
      showTicks();
      show();
    },
    get focusTarget() { return mode.value === "range" ? min : ticks[0] || values; },
  };
}

/**
 * A switch on every config field that can be swept (not the dataset picker nor lists).
 * @param {import("./config_form.js").ConfigForm} configForm
 * @param {Record<string, import("./pure/config_schema.js").SchemaProperty>} properties
 * @param {() => void} onChange after any switch or sweep value changes
 * @returns {Map<string, SweepSwitch>}
 */
export function attachSwitches(configForm, properties, onChange) {
  const switches = new Map();
  for (const [name, field] of configForm.fields) {
    const itemType = name === "dataset" || name === "augment" ? null : sweepItemType(properties[name] || {});
    if (itemType) switches.set(name, sweepSwitch(field, itemType, onChange));
  }
  return switches;
}

/**
 * The swept keys' `parameters`, and the problems of those that do not read.
 * @param {Map<string, SweepSwitch>} switches
 */
export function readParameters(switches) {
  /** @type {Record<string, import("./pure/sweep_spec.js").ParameterSpec>} */
  const parameters = {};
  const problems = [];
  for (const [name, sweep] of switches) {
    if (!sweep.on()) continue;
    const reading = sweep.read();
    if ("problem" in reading) problems.push({ field: `parameters.${name}`, message: reading.problem });
    else parameters[name] = reading.value;
  }
  return { parameters, problems };
}

/**
 * "A grid of these values makes 6 runs", or why it cannot be a grid, for the count line.
 * @param {Map<string, SweepSwitch>} switches
 * @param {string} method
 */
export function countText(switches, method) {
  const { parameters, problems } = readParameters(switches);
  const keys = Object.keys(parameters);
  if (problems.length) return { text: `Fix ${problems[0].field.replace("parameters.", "")}: ${problems[0].message}`, count: null };
  if (!keys.length && !problems.length) return { text: "Switch “sweep” on next to the fields to search over.", count: null };
  const size = gridSize(parameters);
  if (method !== "grid") {
    return { text: "count" in size ? `Searching ${keys.join(", ")} (a grid of them would make ${size.count} runs); max runs decides how many.` : `Searching ${keys.join(", ")}; max runs decides how many.`, count: null };
  }
  if ("problem" in size) return { text: size.problem, count: null };
  return { text: `The grid makes ${size.count} run${size.count === 1 ? "" : "s"}: every combination of ${keys.join(", ")}.`, count: size.count };
}

export { METHODS };
