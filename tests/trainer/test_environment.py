"""describe_environment: the facts a run records about where it trained."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from trainer.environment import MAX_COMMAND_CHARS, describe_environment

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(folder: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        cwd=folder,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


@pytest.fixture
def repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository with one commit, as the working directory."""
    folder = tmp_path / "repo"
    folder.mkdir()
    _git(folder, "init", "-q")
    (folder / "train.py").write_text("print('hello')\n")
    _git(folder, "add", "train.py")
    _git(folder, "commit", "-q", "-m", "first")
    monkeypatch.chdir(folder)
    return folder


def test_it_names_the_host_the_process_and_the_versions() -> None:
    environment = describe_environment(["segtrack", "train", "my config.yaml"])
    assert environment["command"] == "segtrack train 'my config.yaml'"
    assert environment["cwd"] == str(Path.cwd())
    assert environment["pid"] == os.getpid()
    assert environment["python"] == platform.python_version()
    assert environment["host"] and environment["platform"] and environment["user"]
    assert environment["torch"] == torch.__version__
    assert environment.get("cuda") == torch.version.cuda
    assert ("gpus" in environment) == torch.cuda.is_available()
    assert "origin" not in environment  # the reporter knows it, not the trainer


def test_the_command_defaults_to_this_process_and_is_clipped() -> None:
    assert describe_environment()["command"].startswith(sys.orig_argv[0])
    long = describe_environment(["python", "x" * (2 * MAX_COMMAND_CHARS)])
    assert len(long["command"]) == MAX_COMMAND_CHARS


@needs_git
def test_a_clean_repository_gives_its_commit(repository: Path) -> None:
    environment = describe_environment()
    assert environment["git_commit"] == _git(repository, "rev-parse", "HEAD")
    assert environment["git_dirty"] is False


@needs_git
def test_a_changed_tracked_file_makes_it_dirty_an_untracked_one_does_not(
    repository: Path,
) -> None:
    (repository / "outputs.log").write_text("untracked\n")
    assert describe_environment()["git_dirty"] is False
    (repository / "train.py").write_text("print('changed')\n")
    assert describe_environment()["git_dirty"] is True


def test_outside_a_repository_there_is_no_git_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    # tmp folders may lie inside a checkout elsewhere: stop git at the folder itself.
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    environment = describe_environment()
    assert "git_commit" not in environment and "git_dirty" not in environment


def test_without_git_there_is_no_git_state(
    repository: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(repository))  # no git on it
    environment = describe_environment()
    assert "git_commit" not in environment and environment["cwd"] == str(repository)
