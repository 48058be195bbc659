"""/api/v1/runs/{run_id}/uploads and /files: resumable, checksummed uploads from the clients of
runs trained elsewhere, and the run files they become.

A client creates an upload (size and SHA-256), sends its bytes in one or more PATCH requests
carrying `Upload-Offset`, and after a cut asks the upload where it stands and continues. Bodies
stream to the part file in blocks of FLUSH_BYTES, never whole in memory.
"""

from __future__ import annotations

import shutil
from typing import Annotated, Any

import anyio
import anyio.to_thread
from fastapi import APIRouter, Header, Path, Request, Response, status
from fastapi.responses import FileResponse
from starlette.requests import ClientDisconnect

from server.bounds import Count64, Id32, RunIdPath, ascii_int
from server.deps import SessionDep, SessionFactoryDep, SettingsDep
from server.http_errors import ErrorOut, disk_full, error_responses
from server.models import Upload
from server.unit_of_work import UnitOfWorkRoute
from server.upload import service
from server.upload.schemas import (
    UPLOAD_ID_PATTERN,
    PieceOut,
    RunFileOut,
    RunFilesOut,
    UploadCreate,
    UploadOut,
)

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/v1/runs/{run_id}")

FLUSH_BYTES = 1024 * 1024
"""A piece's bytes are written to disk in blocks of about this size (one thread hop each)."""

UploadIdPath = Annotated[str, Path(pattern=UPLOAD_ID_PATTERN, description="The upload's id")]
_TOO_LARGE: dict[int | str, dict[str, Any]] = {
    413: {
        "model": ErrorOut,
        "description": "Payload too large: a file over SEGTRACK_MAX_UPLOAD_BYTES, or a piece "
        "bringing more bytes than the upload has left",
    }
}
_CHECKSUM: dict[int | str, dict[str, Any]] = {
    422: {
        "model": ErrorOut,
        "description": "Invalid input; or code `checksum_mismatch`: the whole file's SHA-256 "
        "is not the announced one, and the upload was discarded",
    }
}
_PIECE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The upload's bytes from `Upload-Offset` on, under any content type "
        "(`application/offset+octet-stream` is recommended)",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


def upload_out(upload: Upload) -> UploadOut:
    return UploadOut(
        id=upload.id,
        kind=upload.kind,
        name=upload.name,
        size_bytes=upload.size_bytes,
        sha256=upload.sha256,
        offset=upload.received_bytes,
        complete=upload.completed_at is not None,
    )


@router.post(
    "/uploads",
    tags=["uploads"],
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": UploadOut, "description": "The same file's upload, to resume or done"},
        **error_responses(404, 409),
        **_TOO_LARGE,
    },
)
def create_upload(
    run_id: RunIdPath,
    body: UploadCreate,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
) -> UploadOut:
    """Announce a file of an external run: `best`/`last` become its checkpoints, other kinds
    its files. The unfinished upload of the same file answers 200 with its offset (resume); a
    finished one of the same content 200 with `complete: true`."""
    upload, created = service.create_upload(session, settings, run_id, body)
    if not created:
        response.status_code = status.HTTP_200_OK
    return upload_out(upload)


@router.get("/uploads/{upload_id}", tags=["uploads"], responses=error_responses(404))
def get_upload(run_id: RunIdPath, upload_id: UploadIdPath, session: SessionDep) -> UploadOut:
    """Where the upload stands: the offset to continue from."""
    return upload_out(service.get_upload(session, run_id, upload_id))


@router.patch(
    "/uploads/{upload_id}",
    tags=["uploads"],
    openapi_extra=_PIECE_BODY,
    responses={**error_responses(404, 409, 507), **_TOO_LARGE, **_CHECKSUM},
)
async def send_piece(
    run_id: RunIdPath,
    upload_id: UploadIdPath,
    request: Request,
    *,
    upload_offset: Annotated[
        Count64,
        Header(alias="Upload-Offset", description="Where the body starts in the file"),
    ],
    factory: SessionFactoryDep,
    settings: SettingsDep,
) -> PieceOut:
    """Append the body's bytes at `Upload-Offset`, which must be the upload's offset (409
    `upload_offset_mismatch` otherwise, with `details.offset`). What arrives before a cut
    connection is kept. The piece that brings the last byte checks the SHA-256 and puts the
    file in place (then `complete: true`). A full disk answers 507 `insufficient_storage`
    with `details.offset`: nothing of the piece was kept, send it again once space is freed."""
    artifacts = settings.artifacts_dir
    declared = ascii_int(request.headers.get("content-length", ""))
    opened = await anyio.to_thread.run_sync(
        lambda: service.open_piece(
            factory, artifacts, run_id, upload_id, offset=upload_offset, declared=declared
        )
    )
    if isinstance(opened, PieceOut):
        return opened
    piece = opened
    try:
        received, overflowed = await _receive(request, piece)
        # Whatever happens to this request now, what it wrote is committed (or dropped) whole.
        with anyio.CancelScope(shield=True):
            answer = await anyio.to_thread.run_sync(
                lambda: service.finish_piece(
                    factory, artifacts, piece, received=received, overflowed=overflowed
                )
            )
    except OSError as error:
        if not disk_full(error):
            raise
        free_bytes = shutil.disk_usage(piece.part.path.parent).free
        raise service.drop_piece(piece, free_bytes) from error
    finally:
        piece.part.close()
    return answer


async def _receive(request: Request, piece: service.Piece) -> tuple[int, bool]:
    """Write the body to the piece's part file; the bytes written, and whether the body went
    past the upload's size (then the rest is not read). A cut connection ends the body."""
    buffer = bytearray()
    written = 0
    try:
        async for data in request.stream():
            if written + len(buffer) + len(data) > piece.room:
                return written, True
            buffer += data
            if len(buffer) >= FLUSH_BYTES:
                await anyio.to_thread.run_sync(piece.part.write, buffer)
                written += len(buffer)
                buffer = bytearray()
    except ClientDisconnect:
        pass
    if buffer:
        await anyio.to_thread.run_sync(piece.part.write, buffer)
        written += len(buffer)
    return written, False


@router.get("/files", tags=["files"], responses=error_responses(404))
def list_files(run_id: RunIdPath, session: SessionDep) -> RunFilesOut:
    """The files the run logged besides its checkpoints, by name."""
    return RunFilesOut(
        items=[
            RunFileOut(
                id=item.id,
                name=item.name,
                kind=item.kind,
                size_bytes=item.size_bytes,
                sha256=item.sha256,
                created_at=item.created_at,
            )
            for item in service.list_files(session, run_id)
        ]
    )


@router.get(
    "/files/{file_id}",
    tags=["files"],
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}, **error_responses(404)},
)
def download_file(
    run_id: RunIdPath, file_id: Annotated[Id32, Path()], session: SessionDep, settings: SettingsDep
) -> FileResponse:
    """The file, as an attachment under its name."""
    found, path = service.run_file(session, settings.artifacts_dir, run_id, file_id)
    return FileResponse(path, media_type="application/octet-stream", filename=found.name)
