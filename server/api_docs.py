"""Interactive API docs at /docs, served from the vendored swagger-ui-dist.

FastAPI's default /docs page loads Swagger UI from a CDN, which leaves it blank on a machine
without internet access, and starts it with an inline script, which the Content-Security-Policy
(server/security_headers.py) refuses; this page loads the copy in web/static/vendor/swagger-ui
and starts it from web/static/js/api_docs.js.
"""

from __future__ import annotations

from html import escape

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

SWAGGER_DIR = "/static/vendor/swagger-ui"

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{title}</title>
<link rel="stylesheet" href="{swagger}/swagger-ui.css">
<link rel="icon" href="{swagger}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi_url}"></div>
<script src="{swagger}/swagger-ui-bundle.js"></script>
<script type="module" src="/static/js/api_docs.js"></script>
</body>
</html>
"""


def install_api_docs(app: FastAPI) -> None:
    """Serve Swagger UI at /docs for an app built with `docs_url=None`."""
    page = PAGE.format(
        title=escape(f"{app.title} API"),
        swagger=SWAGGER_DIR,
        openapi_url=escape(app.openapi_url or "/openapi.json"),
    )

    @app.get("/docs", include_in_schema=False)
    def api_docs() -> HTMLResponse:
        return HTMLResponse(page)
