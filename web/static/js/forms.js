// Form building blocks: labelled fields with help text and an error slot (wired with
// aria-describedby), value parsing that reports problems instead of throwing, and an error
// display that puts the API's {field, message} details next to their fields, lists them in a
// summary at the top and moves focus to the first invalid field.

import { el } from "./dom.js";
import { parseList, parseNumber, parsePair } from "./pure/form_values.js";

/**
 * A form field: its element, its control, its error slot, and how to read and set its value.
 * @typedef {object} Field
 * @property {string} name
 * @property {HTMLElement} element
 * @property {HTMLElement} control
 * @property {HTMLElement} errorEl
 * @property {HTMLElement} focusTarget what a problem link focuses
 * @property {() => import("./pure/form_values.js").Reading} get
 * @property {(value: any) => void} set
 */

/**
 * What every field factory takes: the value's key, the control's id, its label and help text.
 * @typedef {{name: string, id: string, label: string, help?: string}} FieldOptions
 */

/**
 * A labelled field with help text and an error slot, wired with aria-describedby.
 * @param {{name: string, id: string, label: string, control: HTMLElement, help?: any,
 *   get: Field["get"], set: Field["set"], labelAfter?: boolean, extraClass?: string}} options
 * @returns {Field}
 */
export function field({ name, id, label, control, help, get, set, labelAfter = false, extraClass = "" }) {
  const helpId = `${id}-help`;
  const errorId = `${id}-error`;
  const errorEl = el("div", { class: "field-error", id: errorId, hidden: true });
  const describedBy = [help ? helpId : null, errorId].filter(Boolean).join(" ");
  control.setAttribute("aria-describedby", describedBy);
  const labelEl = el("label", { for: control.id || id }, label);
  const element = el("div", { class: `field ${labelAfter ? "field-check" : ""} ${extraClass}`.trim(), "data-field": name },
    labelAfter ? el("div", { class: "check-row" }, control, labelEl) : labelEl,
    labelAfter ? null : control,
    help ? el("small", { class: "help", id: helpId }, help) : null,
    errorEl);
  return { name, element, control, errorEl, focusTarget: control, get, set };
}

/**
 * @param {string} id
 * @param {Record<string, any>} [attributes]
 */
function textInput(id, attributes = {}) {
  return el("input", { id, type: "text", autocomplete: "off", ...attributes });
}

/**
 * Text; empty is null when `nullable`.
 * @param {FieldOptions & {nullable?: boolean, attributes?: Record<string, any>}} options
 */
export function textField({ name, id, label, help, nullable = false, attributes = {} }) {
  const control = textInput(id, attributes);
  return field({
    name, id, label, control, help,
    get: () => {
      const value = control.value.trim();
      return { value: value === "" && nullable ? null : value };
    },
    set: (value) => { control.value = value === null || value === undefined ? "" : String(value); },
  });
}

/**
 * A number (a whole one when `integer`); empty is null when `nullable`.
 * @param {FieldOptions & {integer?: boolean, nullable?: boolean, min?: number, max?: number, placeholder?: string}} options
 */
export function numberField({ name, id, label, help, integer, nullable = false, min, max, placeholder }) {
  const control = el("input", {
    id, type: "number", inputmode: integer ? "numeric" : "decimal", step: integer ? "1" : "any",
    min, max, placeholder,
  });
  return field({
    name, id, label, control, help,
    get: () => {
      if (control.validity.badInput) return { problem: "enter a number" };
      const text = control.value.trim();
      if (text === "") return nullable ? { value: null } : { problem: "enter a number" };
      return parseNumber(text, integer);
    },
    set: (value) => { control.value = value === null || value === undefined ? "" : String(value); },
  });
}

/**
 * One of `options`; "(not set)" is null when `nullable`.
 * @param {FieldOptions & {options: unknown[], nullable?: boolean}} options
 */
export function selectField({ name, id, label, help, options, nullable = false }) {
  const control = el("select", { id },
    nullable ? el("option", { value: "" }, "(not set)") : null,
    options.map((option) => el("option", { value: option }, option)));
  return field({
    name, id, label, control, help,
    get: () => ({ value: control.value === "" && nullable ? null : control.value }),
    set: (value) => { control.value = value === null || value === undefined ? "" : String(value); },
  });
}

/** @param {FieldOptions} options */
export function checkboxField({ name, id, label, help }) {
  const control = el("input", { id, type: "checkbox" });
  return field({
    name, id, label, control, help, labelAfter: true,
    get: () => ({ value: control.checked }),
    set: (value) => { control.checked = Boolean(value); },
  });
}

// A boolean that may also be left unset (the config then decides by itself): a three-way select.
/** @param {FieldOptions} options */
export function optionalBooleanField({ name, id, label, help }) {
  const control = el("select", { id },
    el("option", { value: "" }, "(not set: automatic)"),
    el("option", { value: "true" }, "true"),
    el("option", { value: "false" }, "false"));
  return field({
    name, id, label, control, help,
    get: () => ({ value: control.value === "" ? null : control.value === "true" }),
    set: (value) => { control.value = value === null || value === undefined ? "" : String(Boolean(value)); },
  });
}

// A list typed as comma-separated text; itemType "integer", "number" or "string".
/** @param {FieldOptions & {itemType: string, nullable?: boolean, placeholder?: string}} options */
export function listField({ name, id, label, help, itemType, nullable = false, placeholder }) {
  const control = textInput(id, { placeholder: placeholder || "comma-separated" });
  return field({
    name, id, label, control, help,
    get: () => parseList(control.value, itemType, nullable),
    set: (value) => { control.value = Array.isArray(value) ? value.join(", ") : ""; },
  });
}

// Two numbers (e.g. height x width); both empty means null.
/** @param {FieldOptions & {labels: [string, string], min?: number, max?: number}} options */
export function pairField({ name, id, label, help, labels, min, max }) {
  const first = el("input", { id, type: "number", step: "1", min, max, placeholder: labels[0], "aria-label": `${label}: ${labels[0]}` });
  const second = el("input", { id: `${id}-2`, type: "number", step: "1", min, max, placeholder: labels[1], "aria-label": `${label}: ${labels[1]}` });
  const group = el("div", { class: "pair", role: "group", id: `${id}-group` }, first, el("span", { "aria-hidden": "true" }, "×"), second);
  const controller = field({
    name, id, label, control: group, help,
    get: () => {
      if (first.validity.badInput || second.validity.badInput) return { problem: "enter whole numbers" };
      return parsePair(first.value, second.value, labels);
    },
    set: (value) => {
      const [a, b] = Array.isArray(value) ? value : [null, null];
      first.value = a === null ? "" : String(a);
      second.value = b === null ? "" : String(b);
    },
  });
  // The group's label names the pair; each input also carries its own aria-label.
  controller.element.querySelector("label").setAttribute("for", id);
  group.setAttribute("aria-describedby", first.getAttribute("aria-describedby") || "");
  first.setAttribute("aria-describedby", group.getAttribute("aria-describedby"));
  second.setAttribute("aria-describedby", group.getAttribute("aria-describedby"));
  controller.focusTarget = first;
  return controller;
}

// --- errors ----------------------------------------------------------------------------------

// Puts problems next to their fields and in a summary; `resolve(field)` maps an API field
// name (e.g. "config.learning_rate") to a controller or null.
export class ErrorDisplay {
  constructor(summary, resolve) {
    this.summary = summary;
    this.resolve = resolve;
    this.marked = [];
  }

  clear() {
    for (const controller of this.marked) {
      controller.errorEl.replaceChildren();
      controller.errorEl.hidden = true;
      controller.element.classList.remove("invalid");
      for (const input of controller.element.querySelectorAll("input, select, textarea")) input.removeAttribute("aria-invalid");
    }
    this.marked = [];
    this.summary.replaceChildren();
    this.summary.hidden = true;
  }

  // items: [{field, message}]; `title` heads the summary.
  show(items, title) {
    this.clear();
    const entries = [];
    for (const item of items) {
      const controller = item.field ? this.resolve(item.field) : null;
      if (controller) {
        controller.errorEl.append(el("div", {}, item.message));
        controller.errorEl.hidden = false;
        controller.element.classList.add("invalid");
        for (const input of controller.element.querySelectorAll("input, select, textarea")) input.setAttribute("aria-invalid", "true");
        if (!this.marked.includes(controller)) this.marked.push(controller);
        const collapsed = controller.element.closest("details");
        if (collapsed) collapsed.open = true;
      }
      entries.push({ controller, item });
    }
    const count = items.length;
    this.summary.append(el("h2", {}, title || `Fix ${count === 1 ? "this problem" : `these ${count} problems`} before submitting`));
    this.summary.append(el("ul", {}, entries.map(({ controller, item }) => el("li", {},
      controller
        ? el("a", { href: `#${controller.focusTarget.id}`, onclick: (event) => { event.preventDefault(); controller.focusTarget.focus(); } },
          `${item.field}: `)
        : item.field && item.field !== "config" ? `${item.field}: ` : "",
      item.message))));
    this.summary.hidden = false;
    const first = this.firstInvalid();
    if (first) {
      first.focusTarget.focus();
      first.element.scrollIntoView({ block: "center" });
    } else {
      this.summary.focus();
    }
  }

  firstInvalid() {
    const sorted = [...this.marked].sort((a, b) =>
      a.element.compareDocumentPosition(b.element) & Node.DOCUMENT_POSITION_FOLLOWING ? -1 : 1);
    return sorted[0] || null;
  }
}
