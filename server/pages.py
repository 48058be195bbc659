"""HTML pages: server-rendered Jinja2 shells from web/templates that load their data from the API.

Each page renders its frame and first data on the server; the small scripts in web/static keep it
live (Server-Sent Events) and interactive. Templates autoescape everything users typed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from server.auth.principal import PRINCIPAL_KEY, Principal
from server.auth.run_access import may_change_run
from server.bounds import INT32_MAX
from server.deps import SessionDep
from server.http_errors import http_error
from server.models import Run, Sweep
from server.settings import Settings
from server.sweep import service as sweeps
from server.unit_of_work import UnitOfWorkRoute

WEB_DIR = Path(__file__).resolve().parents[1] / "web"
TEMPLATES = Jinja2Templates(directory=WEB_DIR / "templates")

router = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _principal(request: Request) -> Principal | None:
    principal: Principal | None = getattr(request.state, PRINCIPAL_KEY, None)
    return principal


def _may_change(principal: Principal | None, owner_id: int | None) -> bool:
    """Whether the page's user may change a run or sweep submitted by `owner_id`. Runs and sweeps
    share the rule (`require_run_owner`, `server.sweep.service.check_owner`)."""
    return principal is not None and may_change_run(principal, owner_id)


def _page(
    request: Request, template: str, title: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    # Every page says who its user is and whether they may write (base.html writes it on <body>
    # for the scripts, web/static/js/rights.js), so no page offers a control the API refuses.
    principal = _principal(request)
    return TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "title": title,
            "active": template.removesuffix(".html"),
            "principal": principal,
            "can_write": principal is not None and principal.can_write,
            **context,
        },
        status_code=status_code,
    )


def _read_only(request: Request, title: str, what: str) -> HTMLResponse:
    """The page a user who may only read gets in place of a form whose submit would be refused."""
    principal = _principal(request)
    who = f"{principal.name} is a {principal.role}" if principal else "you are not signed in"
    message = f"{who} and may only read: {what} needs the member or admin role; ask an admin"
    return _page(request, "read_only.html", title, status_code=403, message=message)


@router.get("/favicon.ico")
def favicon() -> RedirectResponse:
    return RedirectResponse("/static/favicon.svg", status_code=301)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, problem: str | None = None) -> Response:
    if _principal(request) is not None and problem is None:
        return RedirectResponse("/", status_code=303)
    return _page(request, "login.html", "Sign in", problem=problem)


@router.get("/setup", response_class=HTMLResponse)
def setup_page(request: Request) -> HTMLResponse:
    return _page(request, "setup.html", "Create your account")


@router.get("/account", response_class=HTMLResponse)
def account_page(request: Request) -> HTMLResponse:
    return _page(request, "account.html", "Account")


@router.get("/admin", response_class=HTMLResponse)
def admin_page(request: Request) -> HTMLResponse:
    principal = _principal(request)
    if principal is None or not principal.is_admin or principal.via == "open":
        message = "only admins manage accounts"
        return _page(request, "not_found.html", "Not allowed", status_code=403, message=message)
    return _page(request, "admin.html", "Users")


@router.get("/", response_class=HTMLResponse)
def runs_page(request: Request) -> HTMLResponse:
    return _page(request, "runs.html", "Runs")


@router.get("/runs/new", response_class=HTMLResponse)
def new_run_page(request: Request, sweep: str | None = None) -> HTMLResponse:
    principal = _principal(request)
    if principal is None or not principal.can_write:
        if sweep:
            return _read_only(request, "New sweep", "starting a sweep")
        return _read_only(request, "New run", "queueing a run")
    settings = _settings(request)
    return _page(
        request,
        "new_run.html",
        "New run",
        default_queue=settings.default_queue,
        dataset_roots=[str(root) for root in settings.dataset_roots],
    )


@router.get("/runs/{run_id:int}", response_class=HTMLResponse)
def run_page(request: Request, run_id: int, session: SessionDep) -> HTMLResponse:
    # An id beyond the int4 column names no run (the database would refuse to look it up).
    run = session.get(Run, run_id) if run_id <= INT32_MAX else None
    if run is None:
        raise HTTPException(404, f"run {run_id} does not exist")
    # The page offers pins, jobs and cancels only to users the API lets change the run.
    can_change = _may_change(_principal(request), run.submitted_by_id)
    return _page(request, "run.html", f"Run {run_id}", run_id=run_id, can_change=can_change)


@router.get("/compare", response_class=HTMLResponse)
def compare_page(request: Request) -> HTMLResponse:
    return _page(request, "compare.html", "Compare runs")


@router.get("/sweeps", response_class=HTMLResponse)
def sweeps_page(request: Request) -> HTMLResponse:
    return _page(request, "sweeps.html", "Sweeps")


@router.get("/sweeps/{sweep_id:int}", response_class=HTMLResponse)
def sweep_page(request: Request, sweep_id: int, session: SessionDep) -> HTMLResponse:
    sweep = session.get(Sweep, sweep_id) if sweep_id <= INT32_MAX else None
    if sweep is None:
        raise HTTPException(404, f"sweep {sweep_id} does not exist")
    # The page draws at once from the sweep as GET /api/v1/sweeps/{id} gives it, then polls.
    data = sweeps.sweep_out(session, sweep).model_dump(mode="json")
    can_change = _may_change(_principal(request), sweep.submitted_by_id)
    return _page(
        request, "sweep.html", sweep.name, sweep_id=sweep_id, sweep=data, can_change=can_change
    )


@router.get("/datasets", response_class=HTMLResponse)
def datasets_page(request: Request) -> HTMLResponse:
    roots = [str(root) for root in _settings(request).dataset_roots]
    return _page(request, "datasets.html", "Datasets", dataset_roots=roots)


@router.get("/workers", response_class=HTMLResponse)
def workers_page(request: Request) -> HTMLResponse:
    return _page(request, "workers.html", "Workers")


async def _not_found(request: Request, exc: Exception) -> Response:
    """Browsers asking for a page get a page; API clients get the JSON error."""
    wants_page = "text/html" in request.headers.get("accept", "")
    if not wants_page or request.url.path.startswith(("/api/", "/static/")):
        return await http_error(request, exc)
    detail = exc.detail if isinstance(exc, HTTPException) else "Not Found"
    message = detail if detail != "Not Found" else f"there is no page at {request.url.path}"
    return TEMPLATES.TemplateResponse(
        request,
        "not_found.html",
        {"title": "Not found", "active": "", "message": message, "principal": _principal(request)},
        status_code=404,
    )


def install_pages(app: FastAPI) -> None:
    """Mount the static files and the page routes."""
    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")
    app.include_router(router)
    # Status handlers win over the API's HTTPException handler, for 404s only.
    app.add_exception_handler(404, _not_found)
