// The training-config part of the new-run form, generated from TrainConfig's JSON schema
// (GET /api/v1/config/schema): one fieldset per group in the schema's `groups` order, a control
// per property chosen by its type, the property's description as help text, defaults filled in.

import { el } from "./dom.js";
import * as forms from "./forms.js";
import { bounds, capitalised, helpText, labelOf, variant } from "./pure/config_schema.js";

const COLLAPSED_GROUPS = new Set(["advanced"]);
const SUGGESTIONS = {
  monitor: ["val/iou", "val/dice", "val/miou", "val/pixel_acc", "val/loss", "train/loss"],
  device: ["auto", "cpu", "cuda", "cuda:0", "cuda:1", "mps"],
};
const EXPLICIT = "__explicit__";
const AUGMENT_EXAMPLE = JSON.stringify([{ name: "HorizontalFlip", p: 0.5 }, { name: "RandomRotate90", p: 0.5 }], null, 2);

/**
 * A field for one schema property, its control chosen by the property's type.
 * @param {string} name
 * @param {import("./pure/config_schema.js").SchemaProperty} prop
 * @returns {forms.Field}
 */
function control(name, prop) {
  const id = `cfg-${name}`;
  const label = labelOf(name);
  const { base, nullable } = variant(prop);
  const emptyNote = nullable ? "empty: not set" : "";
  if (name === "augment") return augmentField(name, id, label, prop);
  if (base.enum) {
    return forms.selectField({ name, id, label, help: prop.description, options: base.enum, nullable });
  }
  if (base.type === "boolean") {
    const make = nullable ? forms.optionalBooleanField : forms.checkboxField;
    return make({ name, id, label, help: prop.description });
  }
  if (base.type === "integer" || base.type === "number") {
    return forms.numberField({
      name, id, label, nullable, integer: base.type === "integer",
      help: helpText(prop, [bounds(base), emptyNote].filter(Boolean).join("; ")),
      min: base.minimum ?? base.exclusiveMinimum, max: base.maximum ?? base.exclusiveMaximum,
      placeholder: nullable ? "not set" : undefined,
    });
  }
  if (base.type === "array" && base.prefixItems) {
    return forms.pairField({ name, id, label, help: helpText(prop, "both empty: not set"), labels: ["height", "width"], min: 8, max: 16384 });
  }
  if (base.type === "array") {
    const itemType = (base.items && base.items.type) || "string";
    return forms.listField({
      name, id, label, itemType, nullable,
      help: helpText(prop, `comma-separated${nullable ? "; empty: not set" : ""}`),
    });
  }
  const attributes = {};
  if (SUGGESTIONS[name]) attributes.list = `${id}-options`;
  if (nullable) attributes.placeholder = "not set";
  const controller = forms.textField({ name, id, label, help: helpText(prop, emptyNote), nullable, attributes });
  if (SUGGESTIONS[name]) {
    controller.element.append(el("datalist", { id: `${id}-options` }, SUGGESTIONS[name].map((value) => el("option", { value }))));
  }
  return controller;
}

// A preset, or an explicit albumentations list typed as JSON.
function augmentField(name, id, label, prop) {
  const presets = (prop.anyOf.find((option) => option.enum) || { enum: [] }).enum;
  const select = el("select", { id },
    presets.map((preset) => el("option", { value: preset }, preset)),
    el("option", { value: EXPLICIT }, "explicit list (JSON)"));
  const text = el("textarea", { id: `${id}-json`, rows: 5, spellcheck: "false", class: "code", "aria-label": "Augmentation list as JSON" });
  const wrap = el("div", { class: "augment-json", hidden: true }, text);
  const show = () => { wrap.hidden = select.value !== EXPLICIT; };
  select.addEventListener("change", () => {
    if (select.value === EXPLICIT && !text.value.trim()) text.value = AUGMENT_EXAMPLE;
    show();
  });
  const controller = forms.field({
    name, id, label, control: select, help: helpText(prop, "an explicit list is JSON: [{\"name\": \"HorizontalFlip\", \"p\": 0.5, \"params\": {}}, …]"),
    get: () => {
      if (select.value !== EXPLICIT) return { value: select.value };
      let value;
      try {
        value = JSON.parse(text.value);
      } catch (error) {
        return { problem: `the list is not valid JSON: ${error.message}` };
      }
      if (!Array.isArray(value)) return { problem: "the explicit list must be a JSON array of transforms" };
      return { value };
    },
    set: (value) => {
      if (Array.isArray(value)) {
        select.value = EXPLICIT;
        text.value = JSON.stringify(value, null, 2);
      } else {
        select.value = value;
      }
      show();
    },
  });
  text.setAttribute("aria-describedby", select.getAttribute("aria-describedby"));
  controller.element.classList.add("field-wide", "augment-field");
  controller.element.insertBefore(wrap, controller.element.querySelector(".help"));
  return controller;
}

/**
 * The config form built from the schema.
 * @typedef {object} ConfigForm
 * @property {Map<string, forms.Field>} fields by property name
 * @property {Record<string, unknown>} defaults the schema's defaults
 * @property {() => {config: Record<string, unknown>, problems: Array<{field: string, message: string}>}} read
 *   every field's value, and the problems found while reading them
 * @property {(config: Record<string, unknown>) => string[]} write set every field named in the
 *   config; returns the keys the form does not know
 */

/**
 * Build the groups into `container`. `custom` maps property names to field factories (e.g. the
 * dataset picker).
 * @param {{properties: Record<string, import("./pure/config_schema.js").SchemaProperty>, groups?: string[]}} schema
 * @param {HTMLElement} container
 * @param {Record<string, (name: string, prop: any) => forms.Field>} [custom]
 * @returns {ConfigForm}
 */
export function build(schema, container, custom = {}) {
  const properties = schema.properties;
  const fields = new Map();
  const groups = schema.groups || [];
  /** @type {Record<string, unknown>} */
  const defaults = {};
  for (const group of groups) {
    const names = Object.keys(properties).filter((name) => properties[name].group === group);
    if (!names.length) continue;
    const legendId = `group-${group}`;
    const grid = el("div", { class: "field-grid" });
    for (const name of names) {
      const prop = properties[name];
      const controller = custom[name] ? custom[name](name, prop) : control(name, prop);
      const labelEl = controller.element.querySelector("label, .label");
      if (labelEl) labelEl.append(el("code", { class: "key" }, name));
      fields.set(name, controller);
      grid.append(controller.element);
      if ("default" in prop) defaults[name] = prop.default;
    }
    if (COLLAPSED_GROUPS.has(group)) {
      container.append(el("details", { class: "panel group", "data-group": group },
        el("summary", { id: legendId }, capitalised(group)),
        el("fieldset", { "aria-labelledby": legendId }, grid)));
    } else {
      container.append(el("fieldset", { class: "panel group", "data-group": group },
        el("legend", { id: legendId }, capitalised(group)), grid));
    }
  }

  function read() {
    /** @type {Record<string, unknown>} */
    const config = {};
    const problems = [];
    for (const [name, controller] of fields) {
      const result = controller.get();
      if ("problem" in result) problems.push({ field: name, message: result.problem });
      else config[name] = result.value;
    }
    return { config, problems };
  }

  /** @param {Record<string, unknown>} config */
  function write(config) {
    const unknown = [];
    for (const [name, value] of Object.entries(config)) {
      const controller = fields.get(name);
      if (controller) controller.set(value);
      else unknown.push(name);
    }
    return unknown;
  }

  write(defaults);
  return { fields, defaults, read, write };
}

