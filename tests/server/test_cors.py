"""Cross-origin reads and writes only from the origins an operator lists (`cors_origins`);
none at all by default."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from server.app import create_app
from server.settings import Settings
from tests.server.helpers import ApiClient

ALLOWED = "https://notebooks.example.org"


def _preflight(client: ApiClient, origin: str, method: str) -> dict[str, str]:
    response = client.request(
        "OPTIONS",
        "/api/v1/runs/1/validation/1",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "Authorization, Content-Type",
        },
    )
    return {key.lower(): value for key, value in response.headers.items()}


def test_a_listed_origin_may_send_every_method_the_api_has(
    settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    app: FastAPI = create_app(
        settings.model_copy(update={"cors_origins": [ALLOWED]}), session_factory=session_factory
    )
    with ApiClient(app) as client:
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            headers = _preflight(client, ALLOWED, method)
            assert headers.get("access-control-allow-origin") == ALLOWED, method
            assert method in headers.get("access-control-allow-methods", ""), method
        other = _preflight(client, "https://elsewhere.example.com", "PUT")
        assert "access-control-allow-origin" not in other


def test_no_origin_is_allowed_unless_configured(app: FastAPI) -> None:
    with ApiClient(app) as client:
        assert "access-control-allow-origin" not in _preflight(client, ALLOWED, "GET")
