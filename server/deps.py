"""FastAPI dependencies: settings, the request's database session and the task queue.

The app keeps them on `app.state` (see `server.app.create_app`); tests swap the session factory
(for a rolled-back connection) and override `get_task_queue` with a recorder.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import anyio.to_thread
from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from server.auth.request_checks import SAFE_METHODS
from server.db import open_session
from server.queue import TaskQueue
from server.settings import Settings


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_session_factory(request: Request) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = request.app.state.session_factory
    return factory


async def get_session(request: Request) -> AsyncIterator[Session]:
    """The request's unit of work: committed once when the endpoint returns, before the response
    is sent (hence `scope="function"` below), rolled back if it raises. GET and HEAD requests
    only read: on SQLite they take no write lock.

    Async on purpose: opening a session does no I/O, and the endpoints of `UnitOfWorkRoute`s
    commit in their own thread, so most requests end here with nothing left to do and pay for
    no extra trip to the thread pool. Whatever is still open is finished in a worker thread."""
    write = request.method not in SAFE_METHODS
    session = open_session(get_session_factory(request), write=write)
    try:
        yield session
    except BaseException:
        await anyio.to_thread.run_sync(_finish, session, False)
        raise
    if session.in_transaction():
        await anyio.to_thread.run_sync(_finish, session, True)
    else:
        session.close()


def _finish(session: Session, commit: bool) -> None:
    try:
        if commit:
            session.commit()
        else:
            session.rollback()
    finally:
        session.close()


def get_task_queue(request: Request) -> TaskQueue:
    queue: TaskQueue = request.app.state.task_queue
    return queue


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
SessionFactoryDep = Annotated[sessionmaker[Session], Depends(get_session_factory)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
TaskQueueDep = Annotated[TaskQueue, Depends(get_task_queue)]
