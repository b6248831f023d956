"""The web API (FastAPI): `create_app(settings)` builds it; `castkeep web` serves it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from castkeep.flows.settings import Settings


def create_app(settings: Settings, **kwargs) -> FastAPI:
    from castkeep.flows.web.app import create_app as _create

    return _create(settings, **kwargs)
