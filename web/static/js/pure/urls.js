// Addresses and query strings the pages read and write: where to go after signing in.

/**
 * A local path to go to after signing in: `next` when it is one of ours, else "/".
 * @param {string | null | undefined} next
 * @returns {string}
 */
export function safeNext(next) {
  if (!next || !next.startsWith("/") || next.startsWith("//") || next.startsWith("/\\")) return "/";
  return next;
}
