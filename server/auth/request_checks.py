"""Checks on a request's headers that need no account: the Host it was sent to (DNS rebinding),
where a state-changing request comes from (cross-site requests), and that JSON endpoints get JSON.

Pure functions over header values, so every rule is tested on its own."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
JSON_TYPES = frozenset({"application/json"})


def host_name(host_header: str) -> str | None:
    """The host name of a `Host` header without its port (`[::1]:8000` -> `::1`); None when
    the header is not a host name."""
    value = host_header.strip().lower()
    if not value or any(character.isspace() or character in "/?#@\\" for character in value):
        return None
    if value.startswith("["):
        end = value.find("]")
        if end < 0 or not _is_port_suffix(value[end + 1 :]):
            return None
        return value[1:end] or None
    name, colon, port = value.partition(":")
    if not _is_port_suffix(colon + port):
        return None
    return name.rstrip(".") or None


def _is_port_suffix(text: str) -> bool:
    """`` or `:8000` (ASCII digits only)."""
    if not text:
        return True
    port = text[1:]
    return text.startswith(":") and port.isascii() and port.isdigit()


def host_allowed(host_header: str, allowed: Iterable[str]) -> bool:
    """Whether a request sent to `host_header` is for this server.

    Loopback names always are; `allowed` adds names, `.example.org` (that domain and its
    subdomains) and `*` (anything, which re-opens DNS rebinding)."""
    name = host_name(host_header)
    if name is None:
        return False
    if name in LOOPBACK_HOSTS:
        return True
    for entry in allowed:
        pattern = entry.strip().lower().rstrip(".")
        if pattern in ("*", name):
            return True
        if pattern.startswith(".") and (name == pattern[1:] or name.endswith(pattern)):
            return True
    return False


def _origin_authority(origin: str) -> str | None:
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return parts.netloc.lower()


def cross_site_reason(
    *,
    origin: str | None,
    fetch_site: str | None,
    host_header: str,
    allowed_origins: Iterable[str],
) -> str | None:
    """Why a state-changing request must be refused as cross-site, or None.

    A browser names the page that sent a request in `Origin` (and `Sec-Fetch-Site`); scripts
    send neither. A request from another origin is refused unless that origin is configured for
    CORS."""
    if origin is not None:
        if origin.rstrip("/") in {item.rstrip("/") for item in allowed_origins}:
            return None
        authority = _origin_authority(origin)
        if authority is None:
            return f"requests from origin {origin!r} are refused"
        if authority != host_header.strip().lower():
            return f"requests from another site ({origin}) are refused"
        return None
    if fetch_site is not None and fetch_site.lower() in ("cross-site", "same-site"):
        return "requests from another site are refused"
    return None


def media_type(content_type: str | None) -> str:
    """`application/json; charset=utf-8` -> `application/json`."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_json(content_type: str | None) -> bool:
    kind = media_type(content_type)
    return kind in JSON_TYPES or (kind.startswith("application/") and kind.endswith("+json"))
