// Run configs as text: one value for a table cell, the schema's groups in order, YAML to copy,
// and the keys in which several configs differ.

/**
 * Text for one value: strings as they are, numbers and booleans too, lists and objects as
 * compact JSON.
 * @param {unknown} value
 */
export function show(value) {
  if (value === null || value === undefined) return "null";
  if (typeof value === "string") return value;
  return JSON.stringify(value);
}

/**
 * What this module reads of TrainConfig's JSON schema: each property's `group`, and the groups'
 * order.
 * @typedef {{properties?: Record<string, {group?: string}>, groups?: string[]}} GroupedSchema
 */

/**
 * {key: value} -> [[group, [[key, value], ...]], ...] in the schema's group and field order;
 * keys the schema does not know go to `fallback`; empty groups are left out.
 * @param {Record<string, unknown>} config
 * @param {GroupedSchema | null} schema
 * @param {string} [fallback]
 * @returns {Array<[string, Array<[string, unknown]>]>}
 */
export function grouped(config, schema, fallback = "other") {
  const properties = (schema && schema.properties) || {};
  const order = (schema && schema.groups) || [];
  /** @type {Map<string, Array<[string, unknown]>>} */
  const groups = new Map(order.map((name) => [name, []]));
  for (const [key, value] of Object.entries(config)) {
    const group = (properties[key] && properties[key].group) || fallback;
    const entries = groups.get(group) || [];
    entries.push([key, value]);
    groups.set(group, entries);
  }
  return [...groups].filter(([, entries]) => entries.length);
}

/**
 * One scalar as YAML: plain when YAML reads it back as the same string, else JSON-quoted.
 * @param {unknown} value
 */
function yamlScalar(value) {
  if (value === null || value === undefined) return "null";
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  const text = String(value);
  const plain = /^[A-Za-z_/.][A-Za-z0-9_./+-]*$/.test(text) && !/^(true|false|null|yes|no|on|off|~)$/i.test(text);
  return plain ? text : JSON.stringify(text);
}

/**
 * YAML for a JSON-like value (maps, lists, scalars), two-space indented; nested blocks start
 * with a newline.
 * @param {unknown} value
 * @param {string} [indent]
 * @returns {string}
 */
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

/**
 * A config as a YAML document (what `segtrack train config.yaml` reads).
 * @param {Record<string, unknown>} config
 */
export function yaml(config) {
  return `${toYaml(config).replace(/^\n/, "")}\n`;
}

/**
 * The keys whose values are not all equal across `configs` (a missing key counts as null), sorted.
 * @param {Array<Record<string, unknown>>} configs
 */
export function differingKeys(configs) {
  const keys = new Set(configs.flatMap((config) => Object.keys(config)));
  return [...keys].filter((key) => new Set(configs.map((config) => JSON.stringify(config[key] ?? null))).size > 1).sort();
}
