"""Where a run trains: host, user, command, versions, GPUs and the git state of the working
directory, as the server's EnvironmentOut describes them.

Torch-free: torch, CUDA, cuDNN and GPU names are filled only when the training process has
already imported torch (read from `sys.modules`, never imported here).
"""

from __future__ import annotations

import getpass
import os
import platform
import shlex
import socket
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

Origin = Literal["worker", "cli", "script"]
GIT_TIMEOUT_S = 2.0
MAX_COMMAND = 4000
MAX_SHORT = 200


def _clip(text: str, limit: int) -> str:
    return text.replace("\x00", "")[:limit]


def _segtrack_version() -> str | None:
    try:
        return version("segtrack")
    except PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    """The output of a git command in the working directory; None when git is missing, this
    is not a repository, or it takes too long."""
    try:
        done = subprocess.run(
            ["git", *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def git_state() -> dict[str, Any]:
    """`git_commit` and `git_dirty` of the working directory's repository, when there is one."""
    commit = _git("rev-parse", "HEAD")
    if commit is None or not commit.strip():
        return {}
    status = _git("status", "--porcelain", "--untracked-files=no")
    state: dict[str, Any] = {"git_commit": commit.strip()[:64]}
    if status is not None:
        state["git_dirty"] = bool(status.strip())
    return state


def torch_details() -> dict[str, Any]:
    """torch, CUDA and cuDNN versions and GPU names, when torch is already loaded."""
    torch: Any = sys.modules.get("torch")
    if torch is None:
        return {}
    details: dict[str, Any] = {"torch": _clip(str(torch.__version__), MAX_SHORT)}
    try:
        if torch.version.cuda:
            details["cuda"] = _clip(str(torch.version.cuda), MAX_SHORT)
        cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
        if cudnn:
            details["cudnn"] = str(cudnn)
        if torch.cuda.is_available():
            count = torch.cuda.device_count()
            details["gpus"] = [
                _clip(torch.cuda.get_device_name(index), MAX_SHORT) for index in range(count)
            ][:64]
    except (AttributeError, RuntimeError):
        pass  # an unusual build: the versions that were readable are enough
    return details


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def collect(origin: Origin) -> dict[str, Any]:
    """The environment of this process (keys left out when unknown)."""
    environment: dict[str, Any] = {
        "host": _clip(socket.gethostname(), MAX_SHORT),
        "command": _clip(shlex.join(sys.argv), MAX_COMMAND),
        "cwd": _clip(str(Path.cwd()), MAX_COMMAND),
        "python": _clip(platform.python_version(), MAX_SHORT),
        "platform": _clip(platform.platform(), MAX_SHORT),
        "pid": os.getpid(),
        "origin": origin,
    }
    if (user := _user()) is not None:
        environment["user"] = _clip(user, MAX_SHORT)
    if (segtrack := _segtrack_version()) is not None:
        environment["segtrack"] = segtrack
    environment.update(git_state())
    environment.update(torch_details())
    return environment
