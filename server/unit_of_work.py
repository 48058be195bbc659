"""Commit a request's unit of work inside the endpoint's own thread, before the response is built.

FastAPI runs a plain `def` endpoint in a worker thread, then validates and serialises its return
value in another thread-pool call, and only closes the request's dependencies (our commit) after
that. A request that has taken row locks would then wait for a free thread while still holding
them, and under load the threads are all taken by requests waiting for those very locks: the API
stalls. Routes of class `UnitOfWorkRoute` commit the session the endpoint was given as soon as the
endpoint returns, in the same thread, so locks and connections go back before anything else waits.
The session dependency's own commit then finds nothing left to do (and still rolls back on error).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute
from sqlalchemy.orm import Session


def committing(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """`endpoint`, committing every `Session` it was passed when it returns normally."""
    if not inspect.isfunction(endpoint) or (
        inspect.iscoroutinefunction(endpoint)
        or inspect.isgeneratorfunction(endpoint)
        or inspect.isasyncgenfunction(endpoint)
    ):
        return endpoint

    @functools.wraps(endpoint)
    def endpoint_then_commit(*args: Any, **kwargs: Any) -> Any:
        result = endpoint(*args, **kwargs)
        for value in kwargs.values():
            if isinstance(value, Session):
                value.commit()
        return result

    return endpoint_then_commit


class UnitOfWorkRoute(APIRoute):
    """An API route whose synchronous endpoint commits its session before returning."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, committing(endpoint), **kwargs)
