"""Request and response bodies of the uploads and run files endpoints."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from server.bounds import MAX_NAME_BYTES, Count32, Count64, text_problem

CHECKPOINT_KINDS = ("best", "last")
"""Upload kinds that become the run's checkpoints; every other kind becomes a run file."""
KIND_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
UPLOAD_ID_PATTERN = r"^[0-9a-f]{32}$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"


def file_name_problem(name: str) -> str | None:
    """Why `name` cannot be a file of a run's folder, or None."""
    problem = text_problem(name)
    if problem is not None:
        return problem
    if name in ("", ".", ".."):
        return f"{name!r} is not a file name"
    if "/" in name or "\\" in name:
        return "a file name must not contain '/' or '\\' (it names one file, not a path)"
    if any(unicodedata.category(char) == "Cc" for char in name):
        return "a file name must not contain control characters"
    if len(name.encode()) > MAX_NAME_BYTES:
        return f"a file name is at most {MAX_NAME_BYTES} bytes in UTF-8"
    return None


def _check_file_name(name: str) -> str:
    problem = file_name_problem(name)
    if problem is not None:
        raise ValueError(problem)
    return name


FileName = Annotated[
    str,
    Field(max_length=MAX_NAME_BYTES, description="A bare file name: no '/', '\\', NUL, '.', '..'"),
    AfterValidator(_check_file_name),
]


class UploadCreate(BaseModel):
    """A file to send in pieces: what it is and how to recognise it once it arrived."""

    model_config = ConfigDict(extra="forbid")

    kind: Annotated[
        str,
        Field(
            pattern=KIND_PATTERN,
            description="`best` or `last`: the run's checkpoint of that kind; any other label "
            "(lower-case letters, digits, '_' and '-', at most 32): a run file",
        ),
    ]
    name: FileName
    size_bytes: Annotated[Count64, Field(description="The whole file's size")]
    sha256: Annotated[
        str, Field(pattern=SHA256_PATTERN, description="The whole file's SHA-256, lower-case hex")
    ]
    epoch: Annotated[
        Count32 | None,
        Field(description="The epoch of a checkpoint (default: the run's epochs done)"),
    ] = None
    metric: Annotated[
        float | None,
        Field(allow_inf_nan=False, description="A checkpoint's monitored metric"),
    ] = None


class UploadOut(BaseModel):
    """An upload and how far it got; `offset` is where the next piece starts."""

    id: str
    kind: str
    name: str
    size_bytes: int
    sha256: str
    offset: int = Field(description="Bytes received and stored so far")
    complete: bool = Field(description="Every byte arrived, the checksum matched, the file is in")


class PieceOut(BaseModel):
    """Where an upload stands after a piece."""

    offset: int
    complete: bool


class RunFileOut(BaseModel):
    id: int
    name: str
    kind: str
    size_bytes: int
    sha256: str
    created_at: datetime


class RunFilesOut(BaseModel):
    items: list[RunFileOut]
