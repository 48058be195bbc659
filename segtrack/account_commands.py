"""What `segtrack user ...`, `segtrack token ...` and `segtrack invite` do: accounts managed on
the server's host, straight in its database (settings from SEGTRACK_*, as for `segtrack serve`;
the default is the embedded mode's `.segtrack/segtrack.db`). The parser is in
`segtrack.accounts_cli`."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from server.auth import audit, repository, service
from server.auth.credentials import password_problem
from server.db import (
    SchemaOutdatedError,
    create_db_engine,
    make_session_factory,
    require_schema_at_head,
    session_scope,
)
from server.errors import DomainError
from server.models import ApiToken
from server.settings import get_settings

CLI_ACTOR = "segtrack (command line)"


class AccountCommandError(Exception):
    """A failure whose message is the whole story (printed without a traceback)."""


@contextmanager
def database() -> Iterator[Session]:
    engine = create_db_engine(get_settings().database_url)
    try:
        require_schema_at_head(engine)
        with session_scope(make_session_factory(engine)) as session:
            yield session
    except SchemaOutdatedError as error:
        raise AccountCommandError(str(error)) from error
    except DomainError as error:
        raise AccountCommandError(error.message) from error
    finally:
        engine.dispose()


def read_password(args: argparse.Namespace) -> str | None:
    if args.no_password:
        return None
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    if not sys.stdin.isatty():
        raise AccountCommandError(
            "no password given: pass --password-stdin (and pipe it in), or --no-password for an "
            "account that signs in by token only"
        )
    first = getpass.getpass("Password: ")
    problem = password_problem(first)
    if problem is not None:
        raise AccountCommandError(problem)
    if getpass.getpass("Password again: ") != first:
        raise AccountCommandError("the two passwords differ")
    return first


def user_create(args: argparse.Namespace) -> int:
    password = read_password(args)
    with database() as session:
        user = service.create_user(session, args.name, args.role, password)
        audit.record(
            session, None, "user.create", f"user {user.name}", actor=CLI_ACTOR, role=user.role
        )
    print(f"created {args.role} {args.name}")
    return 0


def user_list(_args: argparse.Namespace) -> int:
    with database() as session:
        for user in repository.list_users(session):
            state = "active" if user.active else "disabled"
            sign_in = "password" if user.password_hash else "token only"
            print(f"{user.id:>4}  {user.name:<24} {user.role:<7} {state:<9} {sign_in}")
    return 0


def user_change(args: argparse.Namespace) -> int:
    password = read_password(args) if args.action == "set-password" else None
    with database() as session:
        user = repository.user_by_name(session, args.name)
        if user is None:
            raise AccountCommandError(f"no user named {args.name!r} (see `segtrack user list`)")
        if args.action == "set-role":
            service.change_user(session, user, role=args.role)
        elif args.action == "set-password":
            if password is None:
                raise AccountCommandError("set-password needs a password")
            service.change_user(session, user, password=password)
        elif args.action == "delete":
            service.delete_user(session, user)
        else:
            service.change_user(session, user, active=args.action == "enable")
        audit.record(session, None, f"user.{args.action}", f"user {args.name}", actor=CLI_ACTOR)
    print(f"{args.action}: {args.name}")
    return 0


def token_create(args: argparse.Namespace) -> int:
    with database() as session:
        user = repository.user_by_name(session, args.user)
        if user is None:
            raise AccountCommandError(f"no user named {args.user!r} (see `segtrack user list`)")
        created = service.create_token(session, user.id, args.name, args.scope, args.days)
        audit.record(
            session,
            None,
            "token.create",
            f"token {created.record.id}",
            actor=CLI_ACTOR,
            user=user.name,
            scope=args.scope,
        )
    # Only the token on stdout, so `export SEGTRACK_TOKEN=$(segtrack token create ...)` works.
    print(created.token)
    print(f"token {created.record.id} ({args.scope}) for {args.user}: shown once", file=sys.stderr)
    return 0


def token_list(args: argparse.Namespace) -> int:
    with database() as session:
        user_id = None
        if args.user:
            user = repository.user_by_name(session, args.user)
            if user is None:
                raise AccountCommandError(f"no user named {args.user!r}")
            user_id = user.id
        for token, owner in repository.tokens_of(session, user_id):
            state = "revoked" if token.revoked_at else "live"
            line = f"{token.id:>4}  {owner:<20} {token.name:<24} {token.prefix}…  {token.scope}"
            print(f"{line}  {state}")
    return 0


def token_revoke(args: argparse.Namespace) -> int:
    with database() as session:
        token = session.get(ApiToken, args.id)
        if token is None:
            raise AccountCommandError(f"no token {args.id} (see `segtrack token list`)")
        service.revoke_token(token)
        audit.record(session, None, "token.revoke", f"token {token.id}", actor=CLI_ACTOR)
    print(f"revoked token {args.id}")
    return 0


def invite(args: argparse.Namespace) -> int:
    with database() as session:
        code = service.create_invite(session, args.role, CLI_ACTOR)
    base = (args.url or get_settings().public_url or "http://127.0.0.1:8000").rstrip("/")
    print(f"{base}/setup?code={code}")
    return 0
