// The training-config part of the new-run form, generated from TrainConfig's JSON schema
// (GET /api/v1/config/schema): one fieldset per group in the schema's `groups` order, a control
// per property chosen by its type, the property's description as help text, defaults filled in.
"use strict";

const segtrackConfigForm = (() => {
  const { el } = segtrack;
  const forms = segtrackForms;

  const COLLAPSED_GROUPS = new Set(["advanced"]);
  const SUGGESTIONS = {
    monitor: ["val/iou", "val/dice", "val/miou", "val/pixel_acc", "val/loss", "train/loss"],
    device: ["auto", "cpu", "cuda", "cuda:0", "cuda:1", "mps"],
  };
  const EXPLICIT = "__explicit__";
  const AUGMENT_EXAMPLE = JSON.stringify([{ name: "HorizontalFlip", p: 0.5 }, { name: "RandomRotate90", p: 0.5 }], null, 2);

  function title(text) {
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  const ACRONYMS = { lr: "LR", tta: "TTA", amp: "AMP", gpus: "GPUs" };

  // "min_lr" -> "Min LR"; the key itself is shown beside it (configs and the API use it).
  function labelOf(name) {
    return title(name.split("_").map((word) => ACRONYMS[word] || word).join(" "));
  }

  // The property's non-null variant and whether null is allowed.
  function variant(prop) {
    if (!prop.anyOf) return { base: prop, nullable: false };
    const others = prop.anyOf.filter((option) => option.type !== "null");
    return { base: others.length === 1 ? others[0] : prop, nullable: others.length < prop.anyOf.length };
  }

  function bounds(base) {
    const parts = [];
    if (base.minimum !== undefined) parts.push(`≥ ${base.minimum}`);
    if (base.exclusiveMinimum !== undefined) parts.push(`> ${base.exclusiveMinimum}`);
    if (base.maximum !== undefined) parts.push(`≤ ${base.maximum}`);
    if (base.exclusiveMaximum !== undefined) parts.push(`< ${base.exclusiveMaximum}`);
    return parts.join(", ");
  }

  function helpText(prop, extra) {
    return [prop.description, extra].filter(Boolean).join(". ");
  }

  // A controller for one schema property (see segtrackForms.field).
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

  // Build the groups into `container`. `custom` maps property names to controller factories
  // (e.g. the dataset picker). Returns {fields: Map(name -> controller), defaults, read, write}.
  function build(schema, container, custom = {}) {
    const properties = schema.properties;
    const fields = new Map();
    const groups = schema.groups || [];
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
          el("summary", { id: legendId }, title(group)),
          el("fieldset", { "aria-labelledby": legendId }, grid)));
      } else {
        container.append(el("fieldset", { class: "panel group", "data-group": group },
          el("legend", { id: legendId }, title(group)), grid));
      }
    }

    // {config, problems}: every field's value, and the problems found while reading them.
    function read() {
      const config = {};
      const problems = [];
      for (const [name, controller] of fields) {
        const result = controller.get();
        if (result.problem) problems.push({ field: name, message: result.problem });
        else config[name] = result.value;
      }
      return { config, problems };
    }

    // Set every field named in `config`; returns the keys the form does not know.
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

  return { build };
})();
