"""`segtrack sweep create SPEC.yaml --server URL` and `segtrack sweep show|pause|resume|cancel ID`.

The spec is a W&B sweep YAML (`method`, `metric`, `parameters`, `early_terminate`) with the base
TrainConfig under `config` (see `server.sweep.spec`). The server and its token are found as for
`segtrack train --server`: `--server` or $SEGTRACK_SERVER, then $SEGTRACK_TOKEN or the token
`segtrack up` on this machine remembered for that server.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:  # the HTTP client is imported when a command runs: `segtrack --help` stays quick
    from segtrack.client import SegtrackClient, SegtrackError

SERVER_ENV = "SEGTRACK_SERVER"
ACTIONS = ("pause", "resume", "cancel")


class SweepCommandError(Exception):
    """A failure whose message is the whole story for the user."""


def read_spec(path: Path) -> dict[str, Any]:
    """The sweep spec in the YAML (or JSON) file at `path`."""
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise SweepCommandError(f"cannot read {path}: {error.strerror or error}") from error
    except yaml.YAMLError as error:
        raise SweepCommandError(f"{path} is not valid YAML: {error}") from error
    if not isinstance(spec, dict):
        raise SweepCommandError(f"{path} must hold a mapping of sweep keys (method, parameters...)")
    return spec


def _server(args: argparse.Namespace) -> str:
    server: str | None = args.server or os.environ.get(SERVER_ENV)
    if not server:
        raise SweepCommandError(f"name the server with --server URL or ${SERVER_ENV}")
    return server


def _refusal(error: SegtrackError) -> SweepCommandError:
    lines = [f"the server refused ({error.status_code}): {error.message}"]
    if isinstance(error.details, list):
        lines += [
            f"  {item.get('field')}: {item.get('message')}"
            for item in error.details
            if isinstance(item, dict)
        ]
    return SweepCommandError("\n".join(lines))


def describe(sweep: dict[str, Any], server: str) -> str:
    """A few lines about a sweep: status, counts, best run."""
    counts = ", ".join(f"{count} {name}" for name, count in sweep["counts"].items() if count)
    lines = [
        f"sweep {sweep['id']} {sweep['name']!r}: {sweep['status']}, {sweep['method']} over "
        f"{sweep['metric']} ({sweep['goal']}), {len(sweep['runs'])} of {sweep['max_runs']} runs "
        f"made, {sweep['parallel']} at once" + (f"; {counts}" if counts else ""),
        f"  {server.rstrip('/')}/sweeps/{sweep['id']}",
    ]
    best = sweep.get("best_run")
    if best:
        lines.append(
            f"  best: run {best['id']} {sweep['metric']}={best['value']:.4g} {best['params']}"
        )
    return "\n".join(lines)


def _client(args: argparse.Namespace) -> tuple[SegtrackClient, str]:
    from segtrack.client import SegtrackClient

    server = _server(args)
    return SegtrackClient(server), server


def create(args: argparse.Namespace) -> int:
    from segtrack.client import SegtrackError

    spec = read_spec(args.spec)
    client, server = _client(args)
    with client:
        try:
            sweep = client.create_sweep(spec)
        except SegtrackError as error:
            raise _refusal(error) from error
    for key in sweep.get("ignored", []):
        print(f"note: {key} is a W&B setting segtrack does not use; ignored", file=sys.stderr)
    print(describe(sweep, server))
    return 0


def show(args: argparse.Namespace) -> int:
    from segtrack.client import SegtrackError

    client, server = _client(args)
    with client:
        try:
            sweep = (
                client.sweep_action(args.sweep_id, args.action)
                if args.action in ACTIONS
                else client.get_sweep(args.sweep_id)
            )
        except SegtrackError as error:
            raise _refusal(error) from error
    print(describe(sweep, server))
    return 0


def _reporting(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """`command`, printing a SweepCommandError as one message (exit status 2)."""

    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except SweepCommandError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2

    return run


def add_sweep_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sweep = commands.add_parser(
        "sweep",
        help="hyper-parameter sweeps on a server (W&B sweep YAML, searched with Optuna)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = sweep.add_subparsers(dest="sweep_action", required=True, metavar="ACTION")
    made = actions.add_parser("create", help="start a sweep from a spec file")
    made.add_argument("spec", type=Path, metavar="SPEC.yaml")
    made.set_defaults(handler=_reporting(create))
    for action in ("show", *ACTIONS):
        parser = actions.add_parser(action, help=f"{action} a sweep")
        parser.add_argument("sweep_id", type=int, metavar="ID")
        parser.set_defaults(handler=_reporting(show), action=action)
    for parser in (made, *(actions.choices[action] for action in ("show", *ACTIONS))):
        parser.add_argument(
            "--server", metavar="URL", help=f"the segtrack server (default: ${SERVER_ENV})"
        )
