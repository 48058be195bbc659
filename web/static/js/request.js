// JSON calls to the API from ES-module pages: the page's CSRF token on every state-changing
// request, errors as ApiError with the server's message, and safe DOM building.

/** An error answer of the API: `{"error": {"code", "message", "details"}}`. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {any} body
   */
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `request failed with status ${status}`);
    this.status = status;
    this.code = error.code;
    this.details = error.details;
  }
}

/** The CSRF token the server put in the page (absent on pages shown before signing in). */
export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute("content") || "" : "";
}

/**
 * Call the API; resolves to the parsed JSON body (null when empty).
 * @param {string} path
 * @param {{method?: string, json?: unknown}} [options]
 */
export async function request(path, options = {}) {
  const method = options.method || "GET";
  /** @type {Record<string, string>} */
  const headers = { Accept: "application/json" };
  /** @type {RequestInit} */
  const init = { method, headers, credentials: "same-origin" };
  if (method !== "GET" && method !== "HEAD") {
    const token = csrfToken();
    if (token) headers["X-CSRF-Token"] = token;
  }
  if (options.json !== undefined) {
    init.body = JSON.stringify(options.json);
    headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, init);
  const text = await response.text();
  const body = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

/**
 * An element with attributes and children, built without innerHTML.
 * @param {string} tag
 * @param {Record<string, any>} [attributes]
 * @param {...any} children
 * @returns {HTMLElement}
 */
export function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/**
 * Show `text` in a message region; kind is "ok", "error" or "info".
 * @param {HTMLElement} region
 * @param {string} text
 * @param {string} [kind]
 */
export function say(region, text, kind = "info") {
  region.textContent = text;
  region.dataset.kind = kind;
  region.hidden = !text;
}

/** @param {string | null} iso */
export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "–";
}
