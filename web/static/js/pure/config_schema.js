// Reading TrainConfig's JSON schema for the generated form: a label per key, the value's type
// once null is set aside, and its bounds as text.

/**
 * The parts of a JSON-schema property the form reads.
 * @typedef {object} SchemaProperty
 * @property {string} [type]
 * @property {SchemaProperty[]} [anyOf]
 * @property {unknown[]} [enum]
 * @property {number} [minimum]
 * @property {number} [maximum]
 * @property {number} [exclusiveMinimum]
 * @property {number} [exclusiveMaximum]
 * @property {SchemaProperty} [items]
 * @property {SchemaProperty[]} [prefixItems]
 * @property {string} [description]
 * @property {string} [group]
 * @property {unknown} [default]
 */

/** @type {Record<string, string>} */
const ACRONYMS = { lr: "LR", tta: "TTA", amp: "AMP", gpus: "GPUs" };

/**
 * The text with its first letter upper case.
 * @param {string} text
 */
export function capitalised(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/**
 * "min_lr" -> "Min LR" (the key itself is shown beside it: configs and the API use it).
 * @param {string} name
 */
export function labelOf(name) {
  return capitalised(name.split("_").map((word) => ACRONYMS[word] || word).join(" "));
}

/**
 * The property's non-null variant and whether null is allowed.
 * @param {SchemaProperty} prop
 * @returns {{base: SchemaProperty, nullable: boolean}}
 */
export function variant(prop) {
  if (!prop.anyOf) return { base: prop, nullable: false };
  const others = prop.anyOf.filter((option) => option.type !== "null");
  return { base: others.length === 1 ? others[0] : prop, nullable: others.length < prop.anyOf.length };
}

/**
 * "≥ 1, ≤ 10" for a number's bounds; "" without any.
 * @param {SchemaProperty} base
 */
export function bounds(base) {
  const parts = [];
  if (base.minimum !== undefined) parts.push(`≥ ${base.minimum}`);
  if (base.exclusiveMinimum !== undefined) parts.push(`> ${base.exclusiveMinimum}`);
  if (base.maximum !== undefined) parts.push(`≤ ${base.maximum}`);
  if (base.exclusiveMaximum !== undefined) parts.push(`< ${base.exclusiveMaximum}`);
  return parts.join(", ");
}

/**
 * The property's description and a note, as one help text.
 * @param {SchemaProperty} prop
 * @param {string} [extra]
 */
export function helpText(prop, extra) {
  return [prop.description, extra].filter(Boolean).join(". ");
}
