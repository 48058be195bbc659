"""Where a run trains: host, user, command line, versions, GPUs and the git state of its folder.

`describe_environment` returns the keys of the server's EnvironmentOut (all but `origin`, which
the caller knows: a worker, the CLI or a script), each string clipped to what the server stores.
It imports no torch: torch, CUDA, cuDNN and the GPU names are read from an already loaded torch
(the trainer has loaded it by the time it reports), so a torch-free process can describe itself
too. Unknown facts are left out rather than guessed.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import platform
import shlex
import socket
import subprocess
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

GIT_TIMEOUT_S = 2.0
"""A git that answers slower (a huge repository, a hung network mount) is not waited for."""
MAX_COMMAND_CHARS = 4000
"""What the server stores of `command` and `cwd`."""
MAX_TEXT_CHARS = 200
"""What the server stores of the other strings (git_commit: 64)."""
MAX_GPUS = 64


def describe_environment(command: Sequence[str] | None = None) -> dict[str, Any]:
    """This process's environment, as EnvironmentOut's keys (no `origin`).

    Args:
        command: The command line to record; None: this process's own (`sys.orig_argv`, the
            interpreter and its options included, as a user would type it again).

    Returns:
        host, user, command, cwd, python, platform, pid; segtrack when installed; torch, cuda,
        cudnn and gpus when torch is loaded (cuda, cudnn and gpus only where they exist);
        git_commit and git_dirty when the working directory is in a git repository.
    """
    cwd = Path.cwd()
    environment: dict[str, Any] = {
        "host": _clip(socket.gethostname()),
        "command": _clip(
            shlex.join(sys.orig_argv if command is None else command), MAX_COMMAND_CHARS
        ),
        "cwd": _clip(str(cwd), MAX_COMMAND_CHARS),
        "python": _clip(platform.python_version()),
        "platform": _clip(platform.platform()),
        "pid": os.getpid(),
    }
    user = _user()
    if user is not None:
        environment["user"] = _clip(user)
    with contextlib.suppress(PackageNotFoundError):  # running from a bare checkout
        environment["segtrack"] = _clip(version("segtrack"))
    environment.update(_torch_facts())
    environment.update(git_state(cwd))
    return environment


def git_state(folder: Path) -> dict[str, Any]:
    """`git_commit` (HEAD) and `git_dirty` (tracked files changed) of `folder`'s repository;
    empty when git is missing, `folder` is in no repository or git is too slow."""
    commit = _git(folder, "rev-parse", "--verify", "HEAD")
    if not commit:
        return {}
    state: dict[str, Any] = {"git_commit": commit[:64]}
    # Untracked files (outputs, caches) do not make the code that trained differ from HEAD.
    changes = _git(folder, "status", "--porcelain", "--untracked-files=no")
    if changes is not None:
        state["git_dirty"] = bool(changes)
    return state


def _git(folder: Path, *args: str) -> str | None:
    """git's stripped output in `folder`; None when it fails, is missing or is too slow."""
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _torch_facts() -> dict[str, Any]:
    """Versions of torch, CUDA and cuDNN and the visible GPUs' names, from a loaded torch."""
    torch: Any = sys.modules.get("torch")
    if torch is None:
        return {}
    facts: dict[str, Any] = {"torch": _clip(str(torch.__version__))}
    try:
        if torch.version.cuda:
            facts["cuda"] = _clip(str(torch.version.cuda))
        if torch.backends.cudnn.is_available():
            facts["cudnn"] = _clip(str(torch.backends.cudnn.version()))
        if torch.cuda.is_available():
            count = min(torch.cuda.device_count(), MAX_GPUS)
            facts["gpus"] = [_clip(torch.cuda.get_device_name(index)) for index in range(count)]
    except (AttributeError, RuntimeError):
        pass  # a partial or broken CUDA build: the facts read so far still describe it
    return facts


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a uid with no name, in some containers
        return None


def _clip(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """`text` as the server accepts it: no NUL characters, at most `limit` characters."""
    return text.replace("\x00", "")[:limit]
