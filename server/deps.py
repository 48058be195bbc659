"""FastAPI dependencies: settings, the request's database session and the task queue.

The app keeps them on `app.state` (see `server.app.create_app`); tests swap the session factory
(for a rolled-back connection) and override `get_task_queue` with a recorder.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from server.auth.request_checks import SAFE_METHODS
from server.db import session_scope
from server.queue import TaskQueue
from server.settings import Settings


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_session_factory(request: Request) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = request.app.state.session_factory
    return factory


def get_session(request: Request) -> Iterator[Session]:
    """The request's unit of work: committed once when the endpoint returns, before the response
    is sent (hence `scope="function"` below), rolled back if it raises. GET and HEAD requests
    only read: on SQLite they take no write lock."""
    write = request.method not in SAFE_METHODS
    with session_scope(get_session_factory(request), write=write) as session:
        yield session


def get_task_queue(request: Request) -> TaskQueue:
    queue: TaskQueue = request.app.state.task_queue
    return queue


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
SessionFactoryDep = Annotated[sessionmaker[Session], Depends(get_session_factory)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
TaskQueueDep = Annotated[TaskQueue, Depends(get_task_queue)]
