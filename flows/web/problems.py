"""Errors as RFC 9457 problem details: `application/problem+json` with type, title, status,
detail. castkeep's own errors map to statuses by class; anything unexpected is a 500 whose
detail says nothing about the internals."""

from __future__ import annotations

import http
import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from castkeep import errors

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class SafeJSONResponse(JSONResponse):
    """JSON with <, > and & written as \\u escapes: names from the catalogue (talents,
    campaigns) stay data even where a page embeds the document."""

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
                .encode("utf-8"))

# Most specific first.
_STATUS: tuple[tuple[type[errors.CastkeepError], int], ...] = (
    (errors.NotFoundError, 404),
    (errors.ObjectNotFoundError, 404),
    (errors.WithdrawnError, 410),
    (errors.ApprovalError, 409),
    (errors.ConsentError, 409),
    (errors.LicenceError, 409),
    (errors.Refused, 409),
    (errors.InfrastructureError, 503),
    (errors.ConfigurationError, 503),
)


class Problem(Exception):
    """Raise to answer with a problem document."""

    def __init__(self, status: int, detail: str, *, title: str | None = None,
                 type_: str | None = None, headers: dict[str, str] | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or http.HTTPStatus(status).phrase
        self.type = type_ or "about:blank"
        self.headers = headers
        self.extra = extra or {}


def problem_response(status: int, detail: str, *, title: str | None = None,
                     type_: str = "about:blank", headers: dict[str, str] | None = None,
                     extra: dict[str, Any] | None = None) -> JSONResponse:
    body = {"type": type_, "title": title or http.HTTPStatus(status).phrase, "status": status,
            "detail": detail, **(extra or {})}
    return SafeJSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def status_for(exc: errors.CastkeepError) -> int:
    return next((code for cls, code in _STATUS if isinstance(exc, cls)), 422)


def _slug(exc: BaseException) -> str:
    name = type(exc).__name__.removesuffix("Error")
    return "".join("-" + c.lower() if c.isupper() else c for c in name).lstrip("-") or "error"


def install(app: FastAPI) -> None:
    @app.middleware("http")
    async def _no_sniffing(request: Request, call_next):
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc.status, exc.detail, title=exc.title, type_=exc.type,
                                headers=exc.headers, extra=exc.extra)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # The submitted values are left out: a body may hold a password.
        fields = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        detail = "; ".join(f"{'.'.join(str(p) for p in f['loc'])}: {f['msg']}" for f in fields)
        return problem_response(422, detail or "invalid request", extra={"errors": fields})

    @app.exception_handler(errors.CastkeepError)
    async def _castkeep(request: Request, exc: errors.CastkeepError) -> JSONResponse:
        status = status_for(exc)
        return problem_response(status, str(exc), type_=f"urn:castkeep:problem:{_slug(exc)}")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return problem_response(500, "the server failed to answer this request; see its log")
