"""The `segtrack user`, `segtrack token` and `segtrack invite` subcommands (what they do is in
`segtrack.account_commands`, imported when one runs, so `segtrack --help` stays quick)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from server.auth.roles import ROLES, SCOPES


def _handler(name: str) -> Callable[[argparse.Namespace], int]:
    """The command `name` of `segtrack.account_commands`, imported only when it runs."""

    def run(args: argparse.Namespace) -> int:
        from segtrack import account_commands

        try:
            function: Callable[[argparse.Namespace], int] = getattr(account_commands, name)
            return function(args)
        except account_commands.AccountCommandError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2

    return run


def _password_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--password-stdin", action="store_true", help="read it from stdin")
    group.add_argument("--no-password", action="store_true", help="token-only account")


def add_account_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    user = commands.add_parser("user", help="accounts: create, list, set roles, disable")
    actions = user.add_subparsers(dest="user_action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create an account (asks for its password)")
    create.add_argument("name")
    create.add_argument("--role", choices=ROLES, default="member")
    _password_options(create)
    create.set_defaults(handler=_handler("user_create"))
    actions.add_parser("list", help="every account").set_defaults(handler=_handler("user_list"))
    role = actions.add_parser("set-role", help="change an account's role")
    role.add_argument("name")
    role.add_argument("role", choices=ROLES)
    role.set_defaults(handler=_handler("user_change"), action="set-role")
    password = actions.add_parser("set-password", help="set an account's password")
    password.add_argument("name")
    _password_options(password)
    password.set_defaults(handler=_handler("user_change"), action="set-password")
    for action in ("disable", "enable", "delete"):
        parser = actions.add_parser(action, help=f"{action} an account")
        parser.add_argument("name")
        parser.set_defaults(handler=_handler("user_change"), action=action)

    token = commands.add_parser("token", help="API tokens: create (printed once), list, revoke")
    token_actions = token.add_subparsers(dest="token_action", required=True, metavar="ACTION")
    token_create = token_actions.add_parser("create", help="a new token, printed on stdout")
    token_create.add_argument("--user", required=True)
    token_create.add_argument("--name", required=True, help="what the token is for")
    token_create.add_argument("--scope", choices=SCOPES, default="write")
    token_create.add_argument("--days", type=float, help="expires after this many days")
    token_create.set_defaults(handler=_handler("token_create"))
    token_list = token_actions.add_parser("list", help="tokens (their first characters only)")
    token_list.add_argument("--user")
    token_list.set_defaults(handler=_handler("token_list"))
    revoke = token_actions.add_parser("revoke", help="revoke a token: it stops working at once")
    revoke.add_argument("id", type=int)
    revoke.set_defaults(handler=_handler("token_revoke"))

    invite = commands.add_parser("invite", help="print a one-time link that creates an account")
    invite.add_argument("--role", choices=ROLES, default="member")
    invite.add_argument("--url", help="the server's address (default SEGTRACK_PUBLIC_URL)")
    invite.set_defaults(handler=_handler("invite"))
