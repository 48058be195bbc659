from __future__ import annotations

from pathlib import Path

import pytest

from trainer.data.demo import make_demo_dataset


@pytest.fixture(scope="session")
def demo_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic demo dataset, written once per test session."""
    root = tmp_path_factory.mktemp("demo")
    make_demo_dataset(root, count=48, size=64, seed=0)
    return root


@pytest.fixture(scope="session")
def small_demo_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 demo images of 32 x 32, written once per test session: for tests of what a training
    does (options accepted, weights frozen or not), not of how well it learns."""
    root = tmp_path_factory.mktemp("small_demo")
    make_demo_dataset(root, count=24, size=32, seed=0)
    return root
