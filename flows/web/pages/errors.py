"""Errors as pages off the JSON API: a path under the API prefix keeps its problem document;
any other path gets an HTML page (or the sign-in redirect for anonymous visitors)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from castkeep import errors as ck_errors
from castkeep.flows.web.pages.common import PageProblem, SignInRequired, error_page, login_url
from castkeep.flows.web.problems import Problem, status_for

logger = logging.getLogger(__name__)


def _is_api(request: Request, prefix: str) -> bool:
    path = request.url.path
    return path == prefix or path.startswith(prefix + "/")


def install(app: FastAPI, api_prefix: str) -> None:
    api_handlers = dict(app.exception_handlers)

    def wrap(cls, page):
        api = api_handlers.get(cls)

        async def handler(request: Request, exc):
            if api is not None and _is_api(request, api_prefix):
                return await api(request, exc)
            return page(request, exc)

        app.add_exception_handler(cls, handler)

    async def _sign_in(request: Request, exc: SignInRequired):
        return RedirectResponse(login_url(exc.next_path), status_code=303)

    async def _page_error(request: Request, exc: PageProblem):
        return error_page(request, exc.status, exc.detail)

    app.add_exception_handler(SignInRequired, _sign_in)
    app.add_exception_handler(PageProblem, _page_error)
    wrap(Problem, lambda r, e: error_page(r, e.status, e.detail, headers=_no_auth(e.headers)))
    wrap(StarletteHTTPException, lambda r, e: error_page(
        r, e.status_code, "There is no page at this address." if e.status_code == 404
        else str(e.detail)))
    wrap(RequestValidationError, lambda r, e: error_page(
        r, 422, "Some of the values sent are not valid; go back and check the form."))
    wrap(ck_errors.CastkeepError, lambda r, e: error_page(r, status_for(e), str(e)))
    wrap(Exception, _unexpected)


def _no_auth(headers: dict[str, str] | None) -> dict[str, str] | None:
    # A browser must not answer a page's 401 with its own password dialog.
    return {k: v for k, v in (headers or {}).items() if k.lower() != "www-authenticate"} or None


def _unexpected(request: Request, exc: Exception):
    logger.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_page(request, 500, "Something went wrong on the server; the error is in its "
                      "log. Try again, or tell your administrator.")
