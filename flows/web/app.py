"""The FastAPI application: JSON API under /api/v1 (OpenAPI at /api/v1/openapi.json), problem
details for errors, roles on every route (flows/web/auth.py)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI

from castkeep.flows.settings import Settings
from castkeep.flows.web import problems
from castkeep.flows.web.auth import LoginLimiter, SessionCodec, session_key
from castkeep.flows.web.jobs import Jobs

API_PREFIX = "/api/v1"


@dataclass
class WebState:
    settings: Settings
    runtime: Any = None
    sessions: SessionCodec = field(init=False)
    limiter: LoginLimiter = field(init=False)
    jobs: Jobs = field(default_factory=Jobs)
    tls: bool = False
    # "thread": fulfil in a worker thread of this process; "deployment": start a run of the
    # fulfil-request deployment (served by this process's runner when `runner` is set, else by
    # the workers of the configured Prefect server).
    dispatch: str = "thread"
    runner: Any = None
    thumbnails: dict[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.sessions = SessionCodec(minutes=self.settings.web.session_minutes,
                                     key=session_key(self.settings))
        self.limiter = LoginLimiter(self.settings.web.login_attempts)


def create_app(settings: Settings, *, tls: bool | None = None, dispatch: str = "thread",
               serve_runs: bool = False) -> FastAPI:
    """The app for `settings`; the catalogue opens when it starts and closes when it stops.
    `tls`: whether it is served over HTTPS (session cookies are then Secure); default: TLS
    settings given. `dispatch`: how submitted requests are fulfilled ("thread" or
    "deployment"); `serve_runs`: with "deployment", this process also serves the deployment's
    runs (the embedded default)."""
    from castkeep.flows.dispatch import FulfilRunner

    if dispatch not in ("thread", "deployment"):
        raise ValueError(f"dispatch is thread or deployment, not {dispatch!r}")
    from castkeep.flows.web import (routes_assets, routes_compliance, routes_requests,
                                    routes_rights, routes_session, routes_sso)

    state = WebState(settings, tls=bool(settings.web.tls_cert) if tls is None else tls,
                     dispatch=dispatch,
                     runner=FulfilRunner() if dispatch == "deployment" and serve_runs else None)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        from castkeep.flows.runtime import open_runtime

        state.runtime = open_runtime(settings)
        if state.runner is not None:
            state.runner.start()
        try:
            yield
        finally:
            if state.runner is not None:
                state.runner.stop()
            state.jobs.shutdown(wait=True)
            state.runtime.close()

    app = FastAPI(
        title="castkeep",
        version=_version(),
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        default_response_class=problems.SafeJSONResponse,
    )
    app.state.castkeep = state
    problems.install(app)
    for module in (routes_session, routes_requests, routes_assets, routes_compliance,
                   routes_rights):
        app.include_router(module.router, prefix=API_PREFIX)
    app.include_router(routes_sso.router)  # /sso/login, /sso/callback: browser redirects
    # The server-rendered pages, after the API: their routes, /static and HTML error pages.
    from castkeep.flows.web import pages

    pages.install(app, API_PREFIX)
    return app


def _version() -> str:
    from castkeep import __version__

    return __version__
