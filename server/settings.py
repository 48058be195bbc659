"""Service settings, read from `SEGTRACK_*` environment variables.

Paths left unset are derived from `data_dir`, so `SEGTRACK_DATA_DIR=/srv/segtrack` alone moves the
SQLite database, the artifacts and the default dataset root together.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MIB = 1024 * 1024
GIB = 1024 * MIB


class Settings(BaseSettings):
    """Everything the API server (and the worker, which shares the database) needs to know."""

    model_config = SettingsConfigDict(env_prefix="SEGTRACK_", extra="ignore", frozen=True)

    data_dir: Path = Field(Path(".segtrack"), description="Root of everything segtrack writes")
    database_url: str = Field(
        "", description="SQLAlchemy URL; default sqlite:///<data_dir>/segtrack.db"
    )
    broker_url: str = Field(
        "",
        description="Celery broker; default the filesystem broker under <data_dir>/broker "
        "(production: redis://127.0.0.1:6379/0)",
    )
    redis_url: str | None = Field(
        None, description="Redis for live events (pub/sub); None polls the events table instead"
    )
    artifacts_dir: Path = Field(
        Path(), description="Previews, checkpoints and logs; default <data_dir>/artifacts"
    )
    dataset_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Folders datasets may live in (JSON list or colon-separated); "
        "default [<data_dir>/datasets]",
    )
    max_body_bytes: int = Field(16 * MIB, ge=1024, description="Largest accepted request body")
    max_upload_bytes: int = Field(
        64 * GIB,
        ge=0,
        description="Largest file a tracking client may upload (a checkpoint or any run file); "
        "uploads stream in pieces, so SEGTRACK_MAX_BODY_BYTES does not apply to them",
    )
    heartbeat_timeout_s: float = Field(
        60.0, gt=0, description="A running run without a heartbeat for this long is lost"
    )
    event_poll_interval_s: float = Field(
        0.1, gt=0, description="How often event streams poll the database when redis_url is unset"
    )
    default_queue: str = Field("default", min_length=1, description="Queue of runs that name none")
    reaper_interval_s: float = Field(
        5.0, ge=0, description="Seconds between checks for lost runs and workers; 0 disables them"
    )
    sweep_interval_s: float = Field(
        2.0,
        ge=0,
        description="Seconds between passes of the sweep controller (queue the next trials, "
        "prune, finish sweeps); 0 disables it",
    )
    redispatch_after_s: float = Field(
        30.0,
        gt=0,
        description="A queued run is sent to the broker again when a worker serving its queue "
        "has been idle this long after its message was sent (a failed send or a lost message)",
    )
    cancel_grace_s: float = Field(
        30.0,
        gt=0,
        description="A cancelled (or shut down) run's training process gets this long to stop by "
        "itself, then SIGTERM, then as long again before SIGKILL",
    )
    worker_outage_limit_s: float = Field(
        300.0,
        gt=0,
        description="How long a worker keeps retrying a write the database refuses (an outage, "
        "a restart, a locked SQLite file) before the run fails; reports wait in memory meanwhile",
    )
    system_metrics_interval_s: float = Field(
        5.0, ge=1, description="Seconds between samples of a training run's CPU, memory and GPUs"
    )
    event_retention_s: float = Field(
        7 * 24 * 3600.0, gt=0, description="Events older than this are deleted by the reaper"
    )
    # --- live event streams (SSE): caps and keep-alives (server/event_stream.py) ---
    sse_max_streams: int = Field(
        1000, ge=1, description="Event streams open at once in all; one more is answered 429"
    )
    sse_max_streams_per_client: int = Field(
        32,
        ge=1,
        description="Event streams open at once per client (its address, or its user once "
        "signed in); one more is answered 429",
    )
    sse_keepalive_s: float = Field(
        15.0, gt=0, description="A quiet event stream gets a keep-alive comment this often"
    )
    # --- access: accounts, sessions, request checks (server/auth) ---
    auth: Literal["accounts", "none"] = Field(
        "accounts",
        description="`accounts`: every request is a signed-in user's or carries a token; `none` "
        "lets anyone who reaches the port do anything (`segtrack serve --insecure-no-auth`)",
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host names the API answers to besides localhost, 127.0.0.1 and ::1 (comma-"
        "separated; `.example.org` also allows its subdomains; `*` allows any, which re-opens "
        "DNS rebinding)",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins (scheme://host:port) whose pages may call the API with a token; "
        "none by default",
    )
    public_url: str = Field(
        "",
        description="The address users open (e.g. https://segtrack.lab.example); links the "
        "server prints start with it",
    )
    session_ttl_s: float = Field(
        14 * 24 * 3600.0, gt=0, description="How long a browser stays signed in"
    )
    login_attempts: int = Field(
        10, ge=1, description="Failed sign-ins allowed per client address and per account"
    )
    login_window_s: float = Field(
        300.0, gt=0, description="The window `login_attempts` is counted over"
    )
    # --- resource caps on the training configs the API accepts (server/run/config_caps.py) ---
    # A run over a cap is refused at submission with the value, the cap and the setting to raise;
    # `segtrack train` on one's own machine has no caps.
    max_image_pixels: int = Field(
        4096 * 4096,
        ge=64,
        description="Largest image a run trains on, height x width: its image_size (or native "
        "size x scale) and the output size of every resizing or cropping augment step",
    )
    max_batch_pixels: int = Field(
        64 * 1024 * 1024,
        ge=64,
        description="Largest batch, batch_size x image pixels (e.g. 64 images of 1024 x 1024)",
    )
    max_batch_size: int = Field(512, ge=1, description="Largest batch_size")
    max_num_workers: int | None = Field(
        None,
        ge=0,
        description="Most data-loading processes a run may ask for (num_workers); default the "
        "server's CPU cores, at least the trainer's default of 2",
    )

    @field_validator("allowed_hosts", "cors_origins", mode="before")
    @classmethod
    def _split_names(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("dataset_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part for part in text.split(":") if part]
        return value

    @model_validator(mode="after")
    def _derive_paths(self) -> Settings:
        # The model is frozen for callers; filling derived defaults here is its construction.
        data_dir = self.data_dir.expanduser().resolve()
        values: dict[str, Any] = {"data_dir": data_dir}
        if not self.database_url:
            values["database_url"] = f"sqlite:///{data_dir / 'segtrack.db'}"
        if not self.broker_url:
            values["broker_url"] = "filesystem://"
        artifacts = self.artifacts_dir if self.artifacts_dir != Path() else data_dir / "artifacts"
        values["artifacts_dir"] = artifacts.expanduser().resolve()
        roots = self.dataset_roots or [data_dir / "datasets"]
        values["dataset_roots"] = [root.expanduser().resolve() for root in roots]
        for name, value in values.items():
            object.__setattr__(self, name, value)
        return self

    @property
    def broker_dir(self) -> Path:
        """Folder of the embedded filesystem broker's messages."""
        return self.data_dir / "broker"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings from the environment, read once."""
    return Settings()
