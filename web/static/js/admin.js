// The users page (admins): accounts and their roles, invite links, the audit log.
import { el, say } from "./dom.js";
import { messageOf, request } from "./http.js";
import { formatTime } from "./pure/format.js";

const message = /** @type {HTMLElement} */ (document.getElementById("admin-message"));
const usersBody = /** @type {HTMLElement} */ (document.getElementById("users-body"));
const auditBody = /** @type {HTMLElement} */ (document.getElementById("audit-body"));
const auditMore = /** @type {HTMLButtonElement} */ (document.getElementById("audit-more"));
/** @type {number | null} */
let auditBefore = null;

/** @param {unknown} error */
function fail(error) {
  say(message, messageOf(error), "error");
}

/**
 * @param {any} user
 * @param {Record<string, unknown>} change
 */
async function changeUser(user, change) {
  try {
    await request(`/api/v1/users/${user.id}`, { method: "PATCH", json: change });
    say(message, `Changed ${user.name}.`, "ok");
  } catch (error) {
    fail(error);
  }
  await Promise.all([loadUsers(), loadAudit(true)]);
}

/** @param {any} user */
function roleSelect(user) {
  const select = el(
    "select",
    { "aria-label": `Role of ${user.name}` },
    ...["admin", "member", "viewer"].map((role) =>
      el("option", { value: role, selected: role === user.role }, role),
    ),
  );
  select.addEventListener("change", () => changeUser(user, { role: /** @type {HTMLSelectElement} */ (select).value }));
  return select;
}

async function loadUsers() {
  const users = await request("/api/v1/users");
  usersBody.replaceChildren(
    ...users.map((/** @type {any} */ user) =>
      el(
        "tr",
        { "data-user": user.name },
        el("td", {}, user.name),
        el("td", {}, roleSelect(user)),
        el("td", {}, user.has_password ? "password or token" : "token only"),
        el("td", {}, user.active ? "yes" : "disabled"),
        el("td", {}, formatTime(user.created_at)),
        el(
          "td",
          {},
          el(
            "button",
            { type: "button", onclick: () => changeUser(user, { active: !user.active }) },
            user.active ? "Disable" : "Enable",
          ),
        ),
      ),
    ),
  );
}

/** @param {boolean} fresh */
async function loadAudit(fresh) {
  if (fresh) auditBefore = null;
  const query = new URLSearchParams({ limit: "50" });
  if (auditBefore !== null) query.set("before", String(auditBefore));
  const page = await request(`/api/v1/audit?${query}`);
  const rows = page.items.map((/** @type {any} */ entry) =>
    el(
      "tr",
      {},
      el("td", {}, formatTime(entry.at)),
      el("td", {}, entry.actor),
      el("td", {}, el("code", {}, entry.action)),
      el("td", {}, entry.target),
      el("td", {}, el("code", {}, JSON.stringify(entry.details))),
      el("td", {}, entry.client || "–"),
    ),
  );
  if (fresh) auditBody.replaceChildren(...rows);
  else auditBody.append(...rows);
  auditBefore = page.next_before;
  auditMore.hidden = auditBefore === null;
}

document.getElementById("user-form")?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = /** @type {HTMLInputElement} */ (document.getElementById("user-name")).value.trim();
  const role = /** @type {HTMLSelectElement} */ (document.getElementById("user-role")).value;
  const password = /** @type {HTMLInputElement} */ (document.getElementById("user-password")).value;
  try {
    await request("/api/v1/users", { method: "POST", json: { name, role, password: password || null } });
    say(message, `Created ${name} (${role}).`, "ok");
    await Promise.all([loadUsers(), loadAudit(true)]);
  } catch (error) {
    fail(error);
  }
});

document.getElementById("invite")?.addEventListener("click", async () => {
  const role = /** @type {HTMLSelectElement} */ (document.getElementById("user-role")).value;
  try {
    const invite = await request("/api/v1/invites", { method: "POST", json: { role } });
    const link = /** @type {HTMLElement} */ (document.getElementById("invite-link"));
    link.textContent = `${window.location.origin}${invite.path}`;
    /** @type {HTMLElement} */ (document.getElementById("invite-created")).hidden = false;
  } catch (error) {
    fail(error);
  }
});

auditMore.addEventListener("click", () => loadAudit(false).catch(fail));
Promise.all([loadUsers(), loadAudit(true)]).catch(fail);
