"""A server with no account yet prints a one-time link for the first admin when it starts."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from sqlalchemy.orm import Session, sessionmaker

from server.auth import service
from server.db import session_scope
from server.settings import Settings

logger = logging.getLogger(__name__)


def announce_first_admin(factory: sessionmaker[Session], settings: Settings) -> str | None:
    """Log the set-up link when there is no account; returns it (None when accounts exist or
    the server runs without accounts)."""
    if settings.auth == "none":
        logger.warning(
            "segtrack is running WITHOUT accounts (--insecure-no-auth): anyone who reaches "
            "this port can submit, cancel and delete runs and download checkpoints"
        )
        return None
    with session_scope(factory) as session:
        code = service.first_admin_invite(session)
    if code is None:
        return None
    link = f"{settings.public_url.rstrip('/')}/setup?{urlencode({'code': code})}"
    logger.warning(
        "no account exists yet: open %s once to create the first admin (valid one day), or run "
        "`segtrack user create NAME --role admin`",
        link,
    )
    return link
