// Showing run configs: a grouped key/value table (groups from TrainConfig's JSON schema) and
// copying a config as text.

import { el } from "./dom.js";
import { api } from "./http.js";
import { grouped, show } from "./pure/config_text.js";

/** @type {Promise<any> | null} */
let schemaPromise = null;

/** TrainConfig's JSON schema, fetched once per page; null if it cannot be read. */
export function schema() {
  if (!schemaPromise) schemaPromise = api("/api/v1/config/schema").catch(() => null);
  return schemaPromise;
}

/**
 * One small table per group; values that differ from the default are marked.
 * @param {Record<string, unknown>} config
 * @param {any} configSchema TrainConfig's JSON schema, or null
 * @param {string} [fallback] the group of keys the schema does not know
 */
export function table(config, configSchema, fallback = "other") {
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

/**
 * Copy text to the clipboard (falls back to a hidden textarea where the API is missing).
 * @param {string} text
 */
export async function copy(text) {
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
