"""The deployment files keep their safe defaults: docker-compose.yml parses and publishes ports on
the host's loopback only, and the image runs as an unprivileged user that owns /data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).parents[2]


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text("utf-8"))
    return loaded


def test_compose_publishes_only_on_the_loopback() -> None:
    services = _compose()["services"]
    assert {"postgres", "redis", "migrate", "api", "worker"} <= set(services)
    published = {name: service.get("ports", []) for name, service in services.items()}
    assert published["api"] == ["127.0.0.1:8000:8000"]
    for name, ports in published.items():
        for port in ports:
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} to the network"


def test_compose_services_share_the_settings() -> None:
    services = _compose()["services"]
    for name in ("migrate", "api", "worker"):
        environment = services[name]["environment"]
        assert environment["SEGTRACK_DATASET_ROOTS"] == "/data/datasets", name
        assert environment["SEGTRACK_DATA_DIR"] == "/data", name


def test_the_image_runs_as_an_unprivileged_user() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text("utf-8").splitlines()]
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0"), "the last USER must not be root"
    user = users[-1]
    text = "\n".join(lines)
    assert "useradd" in text and f"--gid {user} " in text
    assert f"chown -R {user}:{user} /data" in text
    # The role's command comes after the switch, so it runs as that user.
    assert text.index(f"USER {user}") < text.index("CMD ")
