"""Secrets a user holds and the server only keeps hashes of: passwords (argon2), API tokens,
browser session ids and invite codes (SHA-256 of 256 random bits: fast to check, useless if the
database leaks)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

TOKEN_PREFIX = "st_"
"""API tokens start with this, so a leaked one is easy to recognise (and to scan for)."""
SHOWN_PREFIX_LENGTH = 10
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024

_hasher = PasswordHasher()


def new_api_token() -> str:
    """A fresh bearer token: `st_` + 43 URL-safe characters (256 bits)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_secret() -> str:
    """A random session id, CSRF token or invite code (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """The SHA-256 hex digest stored in place of a token, session id or invite code."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def shown_prefix(token: str) -> str:
    """The first characters of a token, kept so a user can tell their tokens apart."""
    return token[:SHOWN_PREFIX_LENGTH]


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison (CSRF tokens)."""
    return hmac.compare_digest(given.encode(), expected.encode())


def password_problem(password: str) -> str | None:
    """Why `password` cannot be used, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"a password needs at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"a password has at most {MAX_PASSWORD_LENGTH} characters"
    if "\x00" in password:
        return "a password cannot contain NUL characters"
    return None


def hash_password(password: str) -> str:
    """An argon2id hash of `password` (salted, with the library's current parameters)."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches; a missing hash (token-only account) never matches."""
    if password_hash is None:
        dummy_password_check(password)
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def dummy_password_check(password: str) -> None:
    """Spend the time of a real check, so response times do not tell which accounts exist."""
    _hasher.hash(password)
