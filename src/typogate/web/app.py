"""The web application: the dashboard's pages, the REST API, health and metrics."""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import DataError, SQLAlchemyError
from starlette.exceptions import HTTPException

from typogate.runtime import Runtime
from typogate.web import api, monitor_pages, pages, sender, sink_pages
from typogate.web.access import LoginRequired, LoginThrottle, Viewer, signed_in
from typogate.web.body_limit import BodyLimit
from typogate.web.context import WebContext
from typogate.web.metrics import RequestMetrics, StoreCollector

log = logging.getLogger(__name__)
_API_PATHS = ("/api/", "/metrics", "/openapi.json")
# No inline script anywhere (the chart's data travels as JSON in a data block); plotly
# sets inline styles on the elements it draws.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def create_app(runtime: Runtime) -> FastAPI:
    """The FastAPI app serving ``runtime`` (which must have a store); run it with
    :class:`~typogate.web.server.WebServer`."""
    ctx = WebContext.of(runtime)
    app = FastAPI(
        title="typogate",
        summary="Mail to look-alike domains: verdicts, holds, rules, learned correspondents.",
        version="1",
        docs_url=None,  # the interactive docs load scripts from a CDN; the spec is enough
        redoc_url=None,
        openapi_url=None,  # served below, behind sign-in like everything else
        dependencies=[Depends(api.writable_form)],
    )
    app.state.typogate = ctx
    app.state.login_throttle = LoginThrottle()
    app.state.trusted_proxies = tuple(
        ipaddress.ip_network(text, strict=False) for text in ctx.config.web.trusted_proxies
    )
    registry = CollectorRegistry()
    registry.register(StoreCollector(ctx))
    app.add_middleware(RequestMetrics, registry=registry)
    limits = ctx.config.limits
    app.add_middleware(
        BodyLimit, max_bytes=limits.web_body_bytes, seconds=limits.web_request_seconds
    )

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", _CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        # Release links carry their token in the path: never hand it to another site.
        response.headers["Referrer-Policy"] = "no-referrer"
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, _: LoginRequired) -> Response:
        if request.url.path.startswith(_API_PATHS):
            return JSONResponse(
                {"detail": "sign in first (POST /api/session)"},
                status_code=401,
                headers={"WWW-Authenticate": "Cookie"},
            )
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)

    @app.exception_handler(SQLAlchemyError)
    async def store_down(request: Request, error: SQLAlchemyError) -> Response:
        # The web part cannot answer without its store; mail is not affected (the gateway
        # decides from memory). Say so instead of a bare 500, and let the client retry.
        log.error("web: store unreachable for %s: %s", request.url.path, error)
        detail = "the store is unreachable; try again in a minute"
        if request.url.path.startswith(_API_PATHS):
            return JSONResponse({"detail": detail}, 503, headers={"Retry-After": "60"})
        return pages.render(request, "error.html", None, 503, detail=detail)

    @app.exception_handler(DataError)
    async def value_refused(request: Request, error: DataError) -> Response:
        # The store answered and refused a value of this request (PostgreSQL takes no NUL
        # in text, say, where a form sent one): the request's to change, not an outage.
        why = str(error.orig).strip().splitlines()[0]
        log.warning("web: the store refused a value of %s: %s", request.url.path, why)
        detail = f"the store cannot keep a value of this request: {why}"
        if request.url.path.startswith(_API_PATHS):
            return JSONResponse({"detail": detail}, 422)
        who = getattr(request.state, "who", None)
        return pages.render(request, "error.html", who, 422, detail=detail)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> Response:
        # FastAPI's own answer echoes the input, which may hold a lone surrogate (JSON's
        # "\ud800", refused by api._Input): with JSON's escapes it is always valid UTF-8.
        detail = json.dumps({"detail": jsonable_encoder(error.errors())})
        return Response(detail, 422, media_type="application/json")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        if request.url.path.startswith(_API_PATHS) or request.method not in ("GET", "POST"):
            return await http_exception_handler(request, error)
        who = getattr(request.state, "who", None)
        return pages.render(request, "error.html", who, error.status_code, detail=str(error.detail))

    @app.get("/health", tags=["operations"])
    def health() -> JSONResponse:
        """Whether the web part runs and its store answers (no sign-in needed)."""
        try:
            with ctx.store.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return JSONResponse({"status": "degraded", "store": "unreachable"}, 503)
        return JSONResponse({"status": "ok", "store": "ok", "queued_events": ctx.store.queued})

    @app.get("/metrics", tags=["operations"], response_class=Response)
    def metrics(request: Request) -> Response:
        """Prometheus metrics: a signed-in session or ``Authorization: Bearer`` with
        ``web.metrics_token``."""
        token = ctx.config.web.metrics_token
        sent = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        by_token = bool(token) and hmac.compare_digest(sent.encode(), token.encode())
        if not by_token:
            signed_in(request, ctx)  # or LoginRequired
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(who: Viewer) -> JSONResponse:
        return JSONResponse(app.openapi())

    plotly = Path(str(files("plotly"))) / "package_data" / "plotly.min.js"

    @app.get("/static/plotly.min.js", include_in_schema=False)
    def plotly_js() -> FileResponse:
        # The plotting library ships in the plotly package: no CDN, works offline.
        return FileResponse(plotly, headers={"Cache-Control": "public, max-age=86400"})

    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(sink_pages.api)
    app.include_router(sink_pages.pages)
    app.include_router(sender.router)
    monitor_pages.mount(app)
    return app
