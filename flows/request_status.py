"""A request's status moves here and nowhere else in flows/: received -> running -> refused |
failed | awaiting_approval | completed (failed and running resume to running). Each move is one
transaction with its audit event (db/assets_repo.set_request_status)."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from castkeep.db import assets_repo
from castkeep.errors import CastkeepError, NotFoundError
from castkeep.vocab import FINAL_REQUEST_STATUSES, RequestStatus


def set_status(runtime, request_id: uuid.UUID, status: RequestStatus | str, *, actor: str,
               refusals: list[str] | None = None, detail: dict[str, Any] | None = None) -> None:
    with runtime.sessions.begin() as session:
        assets_repo.set_request_status(
            session, request_id, RequestStatus(status), actor=actor, refusals=refusals,
            detail=detail,
        )


def is_final(status: str) -> bool:
    return status in FINAL_REQUEST_STATUSES


@contextlib.contextmanager
def failed_unless_finished(runtime, request_id: uuid.UUID, *, actor: str, logger):
    """A run that ends in an error (or Ctrl-C) leaves its request `failed` with the error as its
    reason, resumable, never `running`. A run that recorded its own outcome (refused, failed)
    keeps it. With the database down nothing can be recorded: the row stays `running` and
    `castkeep request resume` continues it (a resume accepts a `running` request)."""
    try:
        yield
    except (Exception, KeyboardInterrupt) as exc:
        _mark_failed(runtime, request_id, exc, actor=actor, logger=logger)
        raise


def _mark_failed(runtime, request_id: uuid.UUID, exc: BaseException, *, actor: str, logger) -> None:
    reason = str(exc) if isinstance(exc, CastkeepError) else f"{type(exc).__name__}: {exc}"
    try:
        with runtime.sessions.begin() as session:
            if assets_repo.get_request(session, request_id, lock=True).status != RequestStatus.RUNNING:
                return
            assets_repo.set_request_status(session, request_id, RequestStatus.FAILED, actor=actor,
                                           refusals=[reason])
    except NotFoundError:
        return
    except Exception as mark_exc:  # noqa: BLE001 - the run's own error is the one to report
        logger.warning("request %s could not be marked failed (%s); `castkeep request resume %s` "
                       "continues it", request_id, mark_exc, request_id)
