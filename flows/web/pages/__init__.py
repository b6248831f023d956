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

    for router in routers():
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    errors.install(app, api_prefix)
