"""Where a tracked run trains, as the server's EnvironmentOut describes it: the facts of
`trainer.environment` (torch-free: torch's versions and GPUs only once the training loaded it)
and where the run was started from."""

from __future__ import annotations

from typing import Any, Literal

from trainer.environment import describe_environment

Origin = Literal["worker", "cli", "script"]


def collect(origin: Origin) -> dict[str, Any]:
    """The environment of this process (keys left out when unknown), marked with `origin`."""
    return {**describe_environment(), "origin": origin}
