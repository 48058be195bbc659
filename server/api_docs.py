"""Interactive API docs at /docs, served from the vendored swagger-ui-dist.

FastAPI's default /docs page loads Swagger UI from a CDN, which leaves it blank on a machine
without internet access; this one loads the copy in web/static/vendor/swagger-ui instead.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

SWAGGER_DIR = "/static/vendor/swagger-ui"


def install_api_docs(app: FastAPI) -> None:
    """Serve Swagger UI at /docs for an app built with `docs_url=None`."""
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    def api_docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} API",
            swagger_js_url=f"{SWAGGER_DIR}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER_DIR}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER_DIR}/favicon-32x32.png",
            oauth2_redirect_url=None,
        )
