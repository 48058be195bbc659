"""Signing in as a person would: a page asked for while signed out leads to the sign-in form,
which leads back to it; the Account page makes a token that works for scripts; signing out ends
the session."""

from __future__ import annotations

import json
import urllib.request

from playwright.sync_api import Browser, expect

from tests.e2e.app_api import api, unique
from tests.e2e.conftest import screenshot

PASSWORD = "a long enough password"


def test_sign_in_make_a_token_and_sign_out(browser: Browser, app_url: str) -> None:
    name = unique("maria")
    api(app_url, "POST", "/api/v1/users", {"name": name, "role": "member", "password": PASSWORD})
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        page.goto(f"{app_url}/workers")
        expect(page).to_have_url(f"{app_url}/login?next=%2Fworkers")
        page.fill("#login-name", name)
        page.fill("#login-password", "wrong password")
        page.click("#login-form button[type=submit]")
        expect(page.locator("#login-message")).to_have_text("wrong user name or password")
        page.fill("#login-password", PASSWORD)
        page.click("#login-form button[type=submit]")
        expect(page).to_have_url(f"{app_url}/workers")
        expect(page.locator("#who-name")).to_have_text(name)
        expect(page.locator(".topbar .who")).not_to_contain_text("Users")

        page.goto(f"{app_url}/account")
        page.fill("#token-name", "notebook")
        page.select_option("#token-scope", "read")
        page.click("#token-form button[type=submit]")
        expect(page.locator("#token-created")).to_be_visible()
        token = page.locator("#token-value").inner_text()
        expect(page.locator("#tokens-body tr")).to_have_count(1)
        screenshot(page, "account-token")
        request = urllib.request.Request(
            f"{app_url}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            me = json.loads(response.read())
        assert (me["name"], me["scope"]) == (name, "read")

        page.click("#logout")
        expect(page).to_have_url(f"{app_url}/login")
        page.goto(f"{app_url}/")
        expect(page).to_have_url(f"{app_url}/login?next=%2F")
    finally:
        context.close()
