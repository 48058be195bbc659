"""Tokens of the servers this machine runs, so that scripts and the command line on it find them
without being told: `segtrack up` remembers its URL and token in `~/.segtrack/tokens.json`
(readable by its owner only; `SEGTRACK_HOME` moves the folder). Standard library only."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import urlsplit

HOME_ENV = "SEGTRACK_HOME"
FILE_NAME = "tokens.json"


def tokens_file() -> Path:
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".segtrack") / FILE_NAME


def _key(url: str) -> str:
    """`http://localhost:8000/` and `http://127.0.0.1:8000` are the same local server."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    host = (parts.hostname or "").lower()
    if host in ("localhost", "::1"):
        host = "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{host}:{port}"


def _load(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError, UnicodeDecodeError):
        return {}
    return {str(key): str(value) for key, value in data.items()} if isinstance(data, dict) else {}


def write_private(path: Path, text: str) -> None:
    """Write `text` to a file only its owner can read (created 0600, never readable by others)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
    path.chmod(0o600)


def read_token_file(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except (FileNotFoundError, UnicodeDecodeError):
        return None


def remember(url: str, token: str) -> Path:
    """Record `token` for the server at `url`."""
    path = tokens_file()
    tokens = _load(path)
    tokens[_key(url)] = token
    write_private(path, json.dumps(tokens, indent=2, sort_keys=True))
    return path


def find(url: str) -> str | None:
    """The remembered token of the server at `url`, if this machine started it."""
    return _load(tokens_file()).get(_key(url))
