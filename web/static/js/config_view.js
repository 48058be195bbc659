// Showing run configs: a grouped key/value table (groups from TrainConfig's JSON schema), YAML
// and JSON text to copy, and flattening for config diffs.
"use strict";

const segtrackConfig = (() => {
  const { el, api } = segtrack;
  let schemaPromise = null;

  /** TrainConfig's JSON schema, fetched once per page; null if it cannot be read. */
  function schema() {
    if (!schemaPromise) schemaPromise = api("/api/v1/config/schema").catch(() => null);
    return schemaPromise;
  }

  /** Text for one value: numbers and booleans as they are, lists and objects as compact JSON. */
  function show(value) {
    if (value === null || value === undefined) return "null";
    if (typeof value === "string") return value;
    return JSON.stringify(value);
  }

  /**
   * {key: value} -> [[group, [[key, value], ...]], ...] in the schema's group and field order;
   * keys the schema does not know go to `fallback`.
   */
  function grouped(config, configSchema, fallback = "other") {
    const properties = (configSchema && configSchema.properties) || {};
    const order = (configSchema && configSchema.groups) || [];
    const groups = new Map(order.map((name) => [name, []]));
    for (const [key, value] of Object.entries(config)) {
      const group = (properties[key] && properties[key].group) || fallback;
      if (!groups.has(group)) groups.set(group, []);
      groups.get(group).push([key, value]);
    }
    return [...groups].filter(([, entries]) => entries.length);
  }

  /** One small table per group; values that differ from the default are marked. */
  function table(config, configSchema, fallback = "other") {
    const properties = (configSchema && configSchema.properties) || {};
    return el("div", { class: "config-groups" }, ...grouped(config, configSchema, fallback).map(([group, entries]) => el("table", { class: "config-table" },
      el("caption", {}, group),
      el("tbody", {}, ...entries.map(([key, value]) => {
        const property = properties[key];
        const isDefault = property && "default" in property && JSON.stringify(property.default) === JSON.stringify(value);
        return el("tr", { class: isDefault ? "default-value" : "changed-value", title: property && property.description ? property.description : null },
          el("th", { scope: "row" }, key),
          el("td", {}, show(value)));
      })))));
  }

  function yamlScalar(value) {
    if (value === null || value === undefined) return "null";
    if (typeof value === "number" || typeof value === "boolean") return String(value);
    const text = String(value);
    const plain = /^[A-Za-z_/.][A-Za-z0-9_./+-]*$/.test(text) && !/^(true|false|null|yes|no|on|off|~)$/i.test(text);
    return plain ? text : JSON.stringify(text);
  }

  /** YAML for a JSON-like value (maps, lists, scalars), two-space indented. */
  function toYaml(value, indent = "") {
    if (Array.isArray(value)) {
      if (!value.length) return "[]";
      if (value.every((item) => item === null || typeof item !== "object")) return `[${value.map(yamlScalar).join(", ")}]`;
      return value.map((item) => {
        const inner = toYaml(item, `${indent}  `);
        return `\n${indent}- ${inner.replace(/^\n\s*/, "")}`;
      }).join("");
    }
    if (value !== null && typeof value === "object") {
      const entries = Object.entries(value);
      if (!entries.length) return "{}";
      return entries.map(([key, item]) => {
        const inner = toYaml(item, `${indent}  `);
        const nested = item !== null && typeof item === "object" && inner.startsWith("\n");
        return `\n${indent}${yamlScalar(key)}:${nested ? "" : " "}${inner}`;
      }).join("");
    }
    return yamlScalar(value);
  }

  function yaml(config) {
    return `${toYaml(config).replace(/^\n/, "")}\n`;
  }

  /** Copy text to the clipboard (falls back to a hidden textarea where the API is missing). */
  async function copy(text) {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return;
    }
    const area = el("textarea", { class: "visually-hidden", "aria-hidden": "true" });
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }

  /** The keys whose values are not all equal across `configs` (missing keys count as a value). */
  function differingKeys(configs) {
    const keys = new Set(configs.flatMap((config) => Object.keys(config)));
    return [...keys].filter((key) => new Set(configs.map((config) => JSON.stringify(config[key] ?? null))).size > 1).sort();
  }

  return { schema, show, grouped, table, yaml, copy, differingKeys };
})();
