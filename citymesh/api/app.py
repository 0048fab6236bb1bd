"""The HTTP application: FastAPI routes, static files and the lean Graphite route."""

from __future__ import annotations

import logging

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp
from swagger_ui_bundle import swagger_ui_path

from citymesh import __version__
from citymesh.api import admin, auth, graphite, graphite_meta, rest, stream, topology
from citymesh.api.auth import BodySizeLimit
from citymesh.api.context import ApiContext
from citymesh.api.graphite_asgi import GraphiteReads
from citymesh.errors import ConfigError, QueryError
from citymesh.server.settings import SecuritySettings
from citymesh.web import plotly_js_path, static_dir

logger = logging.getLogger(__name__)

__all__ = ["ApiContext", "create_app"]


def create_app(
    context: ApiContext, security: SecuritySettings | None = None
) -> ASGIApp:
    """Build the HTTP application around the given services.

    GET /render and GET /metrics/find go to GraphiteReads, everything else to
    the FastAPI app. The body size limit applies to both.
    """
    security = security or SecuritySettings()
    app = FastAPI(
        title="citymesh",
        version=__version__,
        description=(
            "Sensor data of citymesh: a Graphite-compatible render API, a REST API "
            "of sites, gateways, devices and sensors, and a live event stream."
        ),
        # The default pages load Swagger UI from a CDN; sites run offline, so
        # /docs is served below from the swagger-ui-bundle-v2 package (Swagger UI
        # 5, which renders OpenAPI 3.1) instead.
        docs_url=None,
        redoc_url=None,
    )
    limiter = auth.RateLimiter(security.rate_limit_per_s, security.rate_limit_burst)
    app.state.context = context
    app.state.rate_limiter = limiter
    app.add_middleware(BodySizeLimit, max_bytes=security.max_request_bytes)
    # Every data route needs a key with the right scope; see citymesh.api.auth.
    secured = [Depends(auth.authorize)]
    app.include_router(rest.router, dependencies=secured)
    app.include_router(graphite.router, dependencies=secured)
    app.include_router(graphite_meta.router, dependencies=secured)
    app.include_router(stream.router, dependencies=secured)
    app.include_router(topology.router, dependencies=secured)
    app.include_router(admin.router, dependencies=secured)
    app.include_router(admin.enrolment_router)

    @app.exception_handler(QueryError)
    async def _query_error(request: Request, exc: QueryError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.exception_handler(ConfigError)
    async def _config_error(request: Request, exc: ConfigError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=400)

    plotly_js = plotly_js_path()

    @app.get("/static/vendor/plotly.min.js", include_in_schema=False)
    async def _plotly() -> FileResponse:
        return FileResponse(plotly_js, media_type="text/javascript")

    app.mount(
        "/static/vendor/swagger-ui",
        StaticFiles(directory=swagger_ui_path),
        name="swagger-ui",
    )
    app.mount("/static", StaticFiles(directory=static_dir()), name="static")

    @app.get("/docs", include_in_schema=False)
    async def _docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="citymesh API",
            swagger_js_url="/static/vendor/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/vendor/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/vendor/swagger-ui/favicon-32x32.png",
        )

    @app.get("/", include_in_schema=False)
    async def _index() -> FileResponse:
        return FileResponse(static_dir() / "index.html", media_type="text/html")

    return GraphiteReads(app, context, limiter, security.max_request_bytes)
