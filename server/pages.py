"""HTML pages: server-rendered Jinja2 shells from web/templates that load their data from the API.

Each page renders its frame and first data on the server; the small scripts in web/static keep it
live (Server-Sent Events) and interactive. Templates autoescape everything users typed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from server.settings import Settings

WEB_DIR = Path(__file__).resolve().parents[1] / "web"
TEMPLATES = Jinja2Templates(directory=WEB_DIR / "templates")

router = APIRouter(include_in_schema=False)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _page(request: Request, template: str, title: str, **context: Any) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(
        request, template, {"title": title, "active": template.removesuffix(".html"), **context}
    )


@router.get("/favicon.ico")
def favicon() -> RedirectResponse:
    return RedirectResponse("/static/favicon.svg", status_code=301)


@router.get("/", response_class=HTMLResponse)
def runs_page(request: Request) -> HTMLResponse:
    return _page(request, "runs.html", "Runs")


@router.get("/runs/new", response_class=HTMLResponse)
def new_run_page(request: Request) -> HTMLResponse:
    settings = _settings(request)
    return _page(
        request,
        "new_run.html",
        "New run",
        default_queue=settings.default_queue,
        dataset_roots=[str(root) for root in settings.dataset_roots],
    )


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: int) -> HTMLResponse:
    return _page(request, "run.html", f"Run {run_id}", run_id=run_id)


@router.get("/compare", response_class=HTMLResponse)
def compare_page(request: Request) -> HTMLResponse:
    return _page(request, "compare.html", "Compare runs")


@router.get("/datasets", response_class=HTMLResponse)
def datasets_page(request: Request) -> HTMLResponse:
    roots = [str(root) for root in _settings(request).dataset_roots]
    return _page(request, "datasets.html", "Datasets", dataset_roots=roots)


@router.get("/workers", response_class=HTMLResponse)
def workers_page(request: Request) -> HTMLResponse:
    return _page(request, "workers.html", "Workers")


def install_pages(app: FastAPI) -> None:
    """Mount the static files and the page routes."""
    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")
    app.include_router(router)
