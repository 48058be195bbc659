// The sign-in page: posts name and password as JSON, then goes where the user was headed.
import { say } from "./dom.js";
import { messageOf, request } from "./http.js";
import { safeNext } from "./pure/urls.js";

const form = /** @type {HTMLFormElement} */ (document.getElementById("login-form"));
const message = /** @type {HTMLElement} */ (document.getElementById("login-message"));

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const data = new FormData(form);
  say(message, "");
  try {
    await request("/api/v1/auth/login", {
      method: "POST",
      json: { name: String(data.get("name") || ""), password: String(data.get("password") || "") },
    });
    window.location.assign(safeNext(new URLSearchParams(window.location.search).get("next")));
  } catch (error) {
    say(message, messageOf(error), "error");
  }
});
