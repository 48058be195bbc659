// Reading typed form values from text, reporting a problem instead of throwing, and the
// {field, message} problems of an API error answer.

/** A value read from a field, or why it could not be. @typedef {{value: any} | {problem: string}} Reading */

/**
 * A number (a whole one when `integer`) from text.
 * @param {string} text
 * @param {boolean} [integer]
 * @returns {{value: number} | {problem: string}}
 */
export function parseNumber(text, integer = false) {
  const value = Number(text);
  if (text === "" || !Number.isFinite(value)) return { problem: `"${text}" is not a number` };
  if (integer && !Number.isInteger(value)) return { problem: `"${text}" is not a whole number` };
  return { value };
}

/**
 * A comma-separated list; items of `itemType` "integer", "number" or "string". Empty text is
 * null when `nullable`, else an empty list.
 * @param {string} text
 * @param {string} itemType
 * @param {boolean} [nullable]
 * @returns {Reading}
 */
export function parseList(text, itemType, nullable = false) {
  const trimmed = text.trim();
  if (trimmed === "") return { value: nullable ? null : [] };
  const items = trimmed.split(",").map((item) => item.trim());
  if (items.some((item) => item === "")) return { problem: "remove the empty entry between commas" };
  if (itemType === "string") return { value: items };
  const values = [];
  for (const item of items) {
    const parsed = parseNumber(item, itemType === "integer");
    if ("problem" in parsed) return parsed;
    values.push(parsed.value);
  }
  return { value: values };
}

/**
 * Two whole numbers (height × width); both empty is null.
 * @param {string} first
 * @param {string} second
 * @param {[string, string]} labels what the two are called, for the problem text
 * @returns {Reading}
 */
export function parsePair(first, second, labels) {
  const [a, b] = [first.trim(), second.trim()];
  if (a === "" && b === "") return { value: null };
  if (a === "" || b === "") return { problem: `give both ${labels.join(" and ")}, or leave both empty` };
  const pa = parseNumber(a, true);
  if ("problem" in pa) return pa;
  const pb = parseNumber(b, true);
  if ("problem" in pb) return pb;
  return { value: [pa.value, pb.value] };
}

/** @typedef {{field: string | null, message: string}} Problem */

/**
 * The {field, message} problems of an API error; `datasetField` names the field that dataset
 * problems (a path outside the roots, a failed inspection) belong to.
 * @param {{code?: string, message: string, details?: any}} error
 * @param {string} datasetField
 * @returns {Problem[]}
 */
export function apiProblems(error, datasetField) {
  if (error.code === "dataset_rejected") {
    const report = error.details || {};
    const errors = Array.isArray(report.errors) && report.errors.length ? report.errors : [error.message];
    return errors.map((/** @type {string} */ message) => ({ field: datasetField, message: `inspection: ${message}` }));
  }
  if (error.code === "path_not_allowed") return [{ field: datasetField, message: error.message }];
  if (Array.isArray(error.details) && error.details.length) {
    return error.details.map((/** @type {Problem} */ item) => ({ field: item.field, message: item.message }));
  }
  return [{ field: null, message: error.message }];
}
