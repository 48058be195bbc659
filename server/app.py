"""The FastAPI application: routers, error handling, body-size limit and the lifespan (schema
check, reaper, sweep controller). `create_app(settings)` builds one;
`uvicorn --factory server.app:build_app` serves one from the SEGTRACK_* environment (one uvicorn
worker per process)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

import anyio.to_thread
from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import Headers
from starlette.types import Scope

from server.api_docs import install_api_docs
from server.auth.first_admin import announce_first_admin
from server.auth.middleware import AccessMiddleware
from server.auth.openapi_access import document_access
from server.auth.rate_limit import login_rate_limiter
from server.auth.request_checks import media_type
from server.auth.router import router as auth_router
from server.auth.run_access import require_run_owner
from server.body_limit import BodyLimit, BodySizeLimitMiddleware
from server.compare.router import router as compare_router
from server.config_schema.router import router as config_schema_router
from server.dataset.router import router as datasets_router
from server.db import (
    SchemaOutdatedError,
    create_db_engine,
    dispose_when_idle,
    make_session_factory,
    require_schema_at_head,
)
from server.deps import SessionDep
from server.event_stream import router as events_router
from server.events import EventNotifier
from server.http_errors import install_error_handlers, patched_once
from server.job.router import jobs_router, run_jobs_router
from server.metric.router import router as metrics_router
from server.pages import install_pages
from server.pins.router import router as pins_router
from server.preview.router import router as files_router
from server.queue import CeleryTaskQueue, TaskQueue
from server.reaper import run_reaper
from server.run.router import csv_router as runs_csv_router
from server.run.router import router as runs_router
from server.security_headers import SecurityHeadersMiddleware
from server.settings import Settings, get_settings
from server.sweep.controller import run_controller
from server.sweep.router import router as sweeps_router
from server.tracking.preview_form import PREVIEW_FORM_BYTES, is_preview_form
from server.tracking.router import router as tracking_router
from server.upload.pieces import is_upload_piece
from server.upload.router import router as uploads_router
from server.validation.body_size import VALIDATION_BODY_BYTES, is_validation_put
from server.validation.router import router as validation_router
from server.worker_status.router import router as workers_router

logger = logging.getLogger(__name__)


def _version() -> str:
    try:
        return version("segtrack")
    except PackageNotFoundError:
        return "0.0.0"


@functools.cache
def _freeze_startup_objects() -> None:
    """Keep the long-lived objects of imports and set-up out of the cyclic GC, once per process:
    otherwise a full collection every few big requests walks them all (80 ms in a 10,000-point
    ingest)."""
    gc.collect()
    gc.freeze()


def _start_periodic_tasks(
    factory: sessionmaker[Session], settings: Settings, queue: TaskQueue
) -> list[asyncio.Task[None]]:
    """The reaper and the sweep controller, each unless its interval is 0."""
    tasks = []
    if settings.reaper_interval_s > 0:
        tasks.append(asyncio.create_task(run_reaper(factory, settings, queue)))
    if settings.sweep_interval_s > 0:
        tasks.append(asyncio.create_task(run_controller(factory, settings, queue)))
    return tasks


class Health(BaseModel):
    status: str
    database: str


def _body_limits(settings: Settings) -> Callable[[Scope], BodyLimit | None]:
    """Each request's body limit: SEGTRACK_MAX_BODY_BYTES, or more for a preview form's three
    PNGs and for an epoch's validation detail; none for upload pieces, which stream to disk
    under their upload's size."""
    shared = BodyLimit(settings.max_body_bytes, "SEGTRACK_MAX_BODY_BYTES")
    previews = BodyLimit(
        max(settings.max_body_bytes, PREVIEW_FORM_BYTES),
        "a preview form: three PNGs of at most 16 MiB each",
    )
    validation = BodyLimit(
        max(settings.max_body_bytes, VALIDATION_BODY_BYTES),
        "an epoch's validation detail: about 20,000 images of 30 classes",
    )

    def limit_of(scope: Scope) -> BodyLimit | None:
        if is_upload_piece(scope):
            return None
        if is_preview_form(scope, media_type(Headers(scope=scope).get("content-type"))):
            return previews
        if is_validation_put(scope):
            return validation
        return shared

    return limit_of


def _install_middlewares(app: FastAPI, settings: Settings) -> None:
    """The last added runs first: CORS answers preflights, security headers go on every other
    answer, then the body limit, then access."""
    app.add_middleware(AccessMiddleware, settings=settings)
    app.add_middleware(BodySizeLimitMiddleware, limit_of=_body_limits(settings))
    app.add_middleware(SecurityHeadersMiddleware)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
        )


def create_app(
    settings: Settings,
    *,
    session_factory: sessionmaker[Session] | None = None,
    task_queue: TaskQueue | None = None,
) -> FastAPI:
    """Build the API for `settings`.

    Args:
        settings: Where the database, broker, artifacts and dataset roots are.
        session_factory: Sessions for requests (default: on `settings.database_url`, publishing
            events to `settings.redis_url`); tests pass one bound to a rolled-back connection.
        task_queue: Where runs are sent (default: Celery on `settings.broker_url`).

    The app refuses to start (in its lifespan) when the database schema is not at head.
    """
    engine = create_db_engine(settings.database_url)
    notifier = EventNotifier(settings.redis_url)
    factory = session_factory or make_session_factory(engine, notifier=notifier.notify)
    queue = task_queue or CeleryTaskQueue(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            await anyio.to_thread.run_sync(require_schema_at_head, engine)
        except SchemaOutdatedError as error:
            logger.error("%s", error)
            raise
        settings.artifacts_dir.mkdir(parents=True, exist_ok=True)
        await anyio.to_thread.run_sync(announce_first_admin, factory, settings)
        _freeze_startup_objects()
        tasks = _start_periodic_tasks(factory, settings, queue)
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            notifier.close()
            login_limiter.close()
            await anyio.to_thread.run_sync(dispose_when_idle, engine)

    app = FastAPI(
        title="segtrack",
        version=_version(),
        description="Experiment tracker and trainer for image segmentation: queue UNet runs, "
        "log and stream metrics and mask previews.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = factory
    app.state.task_queue = queue
    login_limiter = login_rate_limiter(
        settings.redis_url, settings.login_attempts, settings.login_window_s
    )
    app.state.login_limiter = login_limiter
    install_error_handlers(app)
    app.openapi = patched_once(app.openapi, document_access)  # type: ignore[method-assign]
    _install_middlewares(app, settings)

    @app.get("/healthz", tags=["health"])
    def healthz(session: SessionDep) -> Health:
        """200 when the API is up and its database answers."""
        session.execute(text("SELECT 1"))
        return Health(status="ok", database="ok")

    install_pages(app)
    install_api_docs(app)
    owned = [Depends(require_run_owner)]
    app.include_router(auth_router)
    app.include_router(runs_csv_router)
    app.include_router(runs_router, dependencies=owned)
    app.include_router(metrics_router, dependencies=owned)
    app.include_router(compare_router)
    for owned_router in (tracking_router, uploads_router, validation_router, pins_router):
        app.include_router(owned_router, dependencies=owned)
    app.include_router(sweeps_router)
    for router in (
        files_router,
        events_router,
        datasets_router,
        workers_router,
        config_schema_router,
        run_jobs_router,
        jobs_router,
    ):
        app.include_router(router)
    return app


def build_app() -> FastAPI:
    """The app for the SEGTRACK_* environment (`uvicorn --factory server.app:build_app`)."""
    return create_app(get_settings())
