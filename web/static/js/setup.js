// The one-time set-up page of an invite link (the first admin's too): creates the account and
// signs in.
import { say } from "./dom.js";
import { messageOf, request } from "./http.js";

const form = /** @type {HTMLFormElement} */ (document.getElementById("setup-form"));
const message = /** @type {HTMLElement} */ (document.getElementById("setup-message"));
const roleLine = /** @type {HTMLElement} */ (document.getElementById("setup-role"));
const code = new URLSearchParams(window.location.search).get("code") || "";

async function showRole() {
  try {
    const invite = await request(`/api/v1/auth/invite?code=${encodeURIComponent(code)}`);
    roleLine.textContent = `This link creates an account with the role ${invite.role}.`;
  } catch (error) {
    say(message, messageOf(error), "error");
    form.querySelector("button")?.setAttribute("disabled", "");
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const data = new FormData(form);
  if (data.get("password") !== data.get("again")) {
    say(message, "the two passwords differ", "error");
    return;
  }
  try {
    await request("/api/v1/auth/setup", {
      method: "POST",
      json: { code, name: String(data.get("name") || ""), password: String(data.get("password") || "") },
    });
    window.location.assign("/");
  } catch (error) {
    say(message, messageOf(error), "error");
  }
});

showRole();
