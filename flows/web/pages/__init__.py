"""Server-rendered pages of `castkeep web` (Jinja2 templates in flows/web/templates, CSS and JS
in flows/web/static): `install(app)` adds the page routers, the static files and error pages
for every path outside the JSON API (which keeps RFC 9457 problem documents)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

# Page modules, each with a `router`; a module not present in this build is skipped.
PAGE_MODULES = ("session", "dashboard", "requests", "assets", "talents", "audit")
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
# Pages load only this app's own scripts, styles and images, and are never framed: markup that
# slipped through escaping still could not run a script.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' "
                           "'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
                           "object-src 'none'; base-uri 'none'; form-action 'self'; "
                           "frame-ancestors 'none'")


def routers() -> list:
    found = []
    for name in PAGE_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            continue
        found.append(module.router)
    return found


def install(app: FastAPI, api_prefix: str) -> None:
    """Pages after the API routers: routes, /static, and HTML error pages off the API."""
    from fastapi.staticfiles import StaticFiles

    from castkeep.flows.web.pages import errors

    @app.middleware("http")
    async def _page_headers(request, call_next):
        response = await call_next(request)
        if response.headers.get("content-type", "").startswith("text/html"):
            response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
            response.headers.setdefault("X-Frame-Options", "DENY")
            response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    for router in routers():
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    errors.install(app, api_prefix)
