"""What `segtrack serve` settles about access before it listens: a server reachable from other
machines needs accounts (or an explicit `--insecure-no-auth`), the host it is bound to is an
allowed `Host`, and links it prints start with the address users open."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import socket

from server.auth.repository import has_users
from server.db import create_db_engine, make_session_factory, session_scope
from server.settings import get_settings

logger = logging.getLogger(__name__)
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})


class ServeRefused(Exception):  # noqa: N818 (reads as what happened)
    """The server must not start as asked; the message says what to do instead."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _own_names() -> set[str]:
    """This machine's host names and addresses, which a server on every interface answers to."""
    name = socket.gethostname()
    names = {name, socket.getfqdn()}
    with contextlib.suppress(OSError):
        names.update(socket.gethostbyname_ex(name)[2])
    return names


def prepare_serving(host: str, port: int, *, insecure_no_auth: bool) -> None:
    """Set SEGTRACK_AUTH / SEGTRACK_PUBLIC_URL / SEGTRACK_ALLOWED_HOSTS for the app this process
    serves, or raise ServeRefused for a server other machines reach without accounts."""
    if insecure_no_auth:
        os.environ["SEGTRACK_AUTH"] = "none"
    shown = host if host not in WILDCARD_HOSTS else socket.gethostname()
    shown = f"[{shown}]" if ":" in shown else shown
    os.environ.setdefault("SEGTRACK_PUBLIC_URL", f"http://{shown}:{port}")
    if not is_loopback(host) and "SEGTRACK_ALLOWED_HOSTS" not in os.environ:
        names = {host} if host not in WILDCARD_HOSTS else _own_names()
        os.environ["SEGTRACK_ALLOWED_HOSTS"] = ",".join(sorted(names))
        logger.info("answering to host names %s (set SEGTRACK_ALLOWED_HOSTS to change)", names)
    get_settings.cache_clear()
    settings = get_settings()
    if settings.auth == "none":
        logger.warning(
            "starting WITHOUT accounts: anyone who reaches %s:%s controls it", host, port
        )
        return
    if is_loopback(host):
        return
    engine = create_db_engine(settings.database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            accounts = has_users(session)
    finally:
        engine.dispose()
    if not accounts:
        raise ServeRefused(
            f"refusing to listen on {host} with no account: anyone on the network could use it. "
            "Create the first admin with `segtrack user create NAME --role admin` (or start once "
            "on 127.0.0.1 and open the set-up link it prints), or pass --insecure-no-auth"
        )
