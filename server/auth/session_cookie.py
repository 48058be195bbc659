"""The browser-session cookie: HttpOnly (scripts never see it), SameSite=Lax (other sites'
requests do not carry it, links to a page still work), Secure over HTTPS, and named after the
port so that two servers on one host keep separate sessions (cookies ignore ports)."""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie

COOKIE_PREFIX = "segtrack_session"


def cookie_name(host_header: str) -> str:
    _, colon, port = host_header.rpartition(":")
    if colon and port.isascii() and port.isdigit() and not host_header.endswith("]"):
        return f"{COOKIE_PREFIX}_{port}"
    return COOKIE_PREFIX


def read_cookie(header: str | None, name: str) -> str | None:
    if not header:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None and morsel.value else None


def cookie_header(name: str, value: str, *, max_age_s: int, secure: bool) -> str:
    """A `Set-Cookie` value; `max_age_s` 0 deletes the cookie."""
    parts = [f"{name}={value}", "Path=/", f"Max-Age={max_age_s}", "HttpOnly", "SameSite=Lax"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)
