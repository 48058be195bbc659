// The account page: one's API tokens (create, shown once; revoke), password, sign-out.
import { el, say } from "./dom.js";
import { messageOf, request } from "./http.js";
import { formatTime } from "./pure/format.js";

const message = /** @type {HTMLElement} */ (document.getElementById("account-message"));
const body = /** @type {HTMLElement} */ (document.getElementById("tokens-body"));
const empty = /** @type {HTMLElement} */ (document.getElementById("tokens-empty"));
const created = /** @type {HTMLElement} */ (document.getElementById("token-created"));
const value = /** @type {HTMLElement} */ (document.getElementById("token-value"));

/** @param {unknown} error */
function fail(error) {
  say(message, messageOf(error), "error");
}

async function loadTokens() {
  const tokens = await request("/api/v1/auth/tokens");
  body.replaceChildren(
    ...tokens.map((/** @type {any} */ token) =>
      el(
        "tr",
        { "data-token-id": token.id },
        el("td", {}, token.name),
        el("td", {}, el("code", {}, `${token.prefix}…`)),
        el("td", {}, token.scope === "write" ? "read and write" : "read only"),
        el("td", {}, formatTime(token.created_at)),
        el("td", {}, formatTime(token.last_used_at)),
        el("td", {}, token.expires_at ? formatTime(token.expires_at) : "never"),
        el(
          "td",
          {},
          token.revoked_at
            ? el("span", { class: "muted" }, `revoked ${formatTime(token.revoked_at)}`)
            : el("button", { type: "button", class: "danger", onclick: () => revoke(token) }, "Revoke"),
        ),
      ),
    ),
  );
  empty.hidden = tokens.length > 0;
}

/** @param {any} token */
async function revoke(token) {
  if (!window.confirm(`Revoke the token "${token.name}"? Scripts using it stop working at once.`)) return;
  try {
    await request(`/api/v1/auth/tokens/${token.id}`, { method: "DELETE" });
    say(message, `Revoked "${token.name}".`, "ok");
    await loadTokens();
  } catch (error) {
    fail(error);
  }
}

document.getElementById("token-form")?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = /** @type {HTMLInputElement} */ (document.getElementById("token-name")).value.trim();
  const scope = /** @type {HTMLSelectElement} */ (document.getElementById("token-scope")).value;
  const days = /** @type {HTMLInputElement} */ (document.getElementById("token-days")).value;
  try {
    const token = await request("/api/v1/auth/tokens", {
      method: "POST",
      json: { name, scope, expires_in_days: days ? Number(days) : null },
    });
    value.textContent = token.token;
    created.hidden = false;
    say(message, "");
    await loadTokens();
  } catch (error) {
    fail(error);
  }
});

document.getElementById("token-copy")?.addEventListener("click", async () => {
  await navigator.clipboard.writeText(value.textContent || "");
  say(message, "Token copied.", "ok");
});

document.getElementById("password-form")?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const current = /** @type {HTMLInputElement} */ (document.getElementById("password-current")).value;
  const next = /** @type {HTMLInputElement} */ (document.getElementById("password-new")).value;
  try {
    await request("/api/v1/auth/password", {
      method: "POST",
      json: { current_password: current, new_password: next },
    });
    window.location.assign("/login");
  } catch (error) {
    fail(error);
  }
});

document.getElementById("logout")?.addEventListener("click", async () => {
  try {
    await request("/api/v1/auth/logout", { method: "POST" });
  } finally {
    window.location.assign("/login");
  }
});

loadTokens().catch(fail);
