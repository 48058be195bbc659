"""Domain errors: what a user did wrong, said so that they can fix it.

Services raise these; `server.http_errors` maps them to JSON responses once for the whole app:
`{"error": {"code": ..., "message": ..., "details": ...}}`. No web framework here: the worker
raises and catches them too.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base class; `status_code` and `code` say how the API reports it."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(DomainError):  # noqa: N818 (the API's names)
    """An id or name that does not exist."""

    status_code = 404
    code = "not_found"


class Conflict(DomainError):  # noqa: N818 (the API's names)
    """A valid request for something in the wrong state (e.g. cancelling a finished run)."""

    status_code = 409
    code = "conflict"


class InvalidInput(DomainError):  # noqa: N818 (the API's names)
    """Input that breaks a rule; `details` is a list of `{"field": ..., "message": ...}`."""

    status_code = 422
    code = "invalid_input"

    def __init__(self, message: str, details: list[dict[str, str]] | None = None) -> None:
        super().__init__(message, details or [])


class DatasetRejected(DomainError):  # noqa: N818 (the API's names)
    """A dataset whose inspection found errors; `details` is the inspection report."""

    status_code = 422
    code = "dataset_rejected"


class Unauthenticated(DomainError):  # noqa: N818 (the API's names)
    """A request with no valid credentials: no session, or a bad, expired or revoked token."""

    status_code = 401
    code = "unauthenticated"


class Forbidden(DomainError):  # noqa: N818 (the API's names)
    """A known caller asking for something their role or token scope does not allow."""

    status_code = 403
    code = "forbidden"


class TooManyRequests(DomainError):  # noqa: N818 (the API's names)
    """Too many attempts (sign-ins) in a short time; `details` says when to retry."""

    status_code = 429
    code = "too_many_requests"


class PathNotAllowed(DomainError):  # noqa: N818 (the API's names)
    """A server-side path outside the configured dataset roots."""

    status_code = 403
    code = "path_not_allowed"


class PayloadTooLarge(DomainError):  # noqa: N818 (the API's names)
    """A request body or batch over the configured limit."""

    status_code = 413
    code = "payload_too_large"


class UploadOffsetMismatch(Conflict):
    """A piece of an upload sent for another offset than the stored one; `details.offset` is
    where the upload stands (the client continues from there)."""

    code = "upload_offset_mismatch"


class UploadBusy(Conflict):
    """Another request is sending the same upload now; `details.offset` is the last committed
    offset."""

    code = "upload_busy"


class InsufficientStorage(DomainError):  # noqa: N818 (the API's names)
    """The server's disk (or quota) is full: nothing of the request was kept."""

    status_code = 507
    code = "insufficient_storage"


class ChecksumMismatch(DomainError):  # noqa: N818 (the API's names)
    """An upload whose bytes, once all arrived, do not have the SHA-256 announced at its start;
    `details` has both digests."""

    status_code = 422
    code = "checksum_mismatch"
