// What the signed-in user may do, as the server wrote it on the page's <body> (base.html, from
// server/pages.py): their name, their role and whether they may write at all. Pages about one run
// or sweep also carry whether the user may change that one (data-can-change on the page's root).
// Pages show only the controls the API would accept from this user.

/**
 * @typedef {{name: string, role: string, canWrite: boolean, isAdmin: boolean}} Rights
 */

/** The page's user and what they may do; read when asked, so modules import it freely. */
export function pageRights() {
  const data = document.body.dataset;
  return {
    name: data.user || "",
    role: data.role || "",
    canWrite: data.canWrite === "true",
    isAdmin: data.role === "admin",
  };
}

/**
 * Whether the user may change a run or sweep submitted by `owner` (its `submitted_by`; null when
 * submitted before accounts existed, which only admins change): the API's rule
 * (server/auth/run_access.py may_change_run).
 * @param {Rights} rights
 * @param {string | null | undefined} owner
 */
export function mayChange(rights, owner) {
  return rights.canWrite && (rights.isAdmin || (Boolean(owner) && owner === rights.name));
}
