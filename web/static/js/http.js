// JSON calls to the API: the page's CSRF token on every state-changing request, error answers
// as ApiError with the server's message, and a signed-out browser sent to the sign-in page.

/** An error answer of the API: `{"error": {"code", "message", "details"}}`. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {any} body
   */
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `request failed with status ${status}`);
    /** @type {number} */
    this.status = status;
    /** @type {string | undefined} */
    this.code = error.code;
    /** @type {any} */
    this.details = error.details;
  }
}

/** The CSRF token the server put in the page (absent on pages shown before signing in). */
export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute("content") || "" : "";
}

/**
 * @typedef {object} RequestOptions
 * @property {string} [method] GET by default
 * @property {unknown} [json] a body sent as JSON
 */

/**
 * Call the API; resolves to the parsed JSON body (null when empty), rejects with ApiError.
 * @param {string} path
 * @param {RequestOptions} [options]
 * @returns {Promise<any>}
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
 * request() for pages of a signed-in user: a 401 (the session expired or was revoked) goes to
 * the sign-in page, which comes back here afterwards.
 * @param {string} path
 * @param {RequestOptions} [options]
 * @returns {Promise<any>}
 */
export async function api(path, options = {}) {
  try {
    return await request(path, options);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      window.location.assign(`/login?next=${encodeURIComponent(window.location.pathname + window.location.search)}`);
    }
    throw error;
  }
}

/**
 * The message of anything thrown.
 * @param {unknown} error
 */
export function messageOf(error) {
  return error instanceof Error ? error.message : String(error);
}
