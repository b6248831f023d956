"""Takedown tasks: list them, and record one done (who, when, a note). Revocation and expiry open
them (tasks/revoke.py); the audit reports open ones past their deadline (tasks/audit.py)."""

from __future__ import annotations

import re
from typing import Any

from castkeep.db import placements
from castkeep.db.ids import parse_id
from castkeep.errors import ConsentStateError, NotFoundError, SpecError

MAX_NOTE = 2000


def list_takedowns(runtime, *, open_only: bool = False) -> list[dict[str, Any]]:
    with runtime.sessions() as session:
        return [t.as_dict() for t in placements.list_takedowns(session, open_only=open_only)]


def complete(runtime, *, takedown_id: str, note: str | None, actor: str) -> dict[str, Any]:
    """Mark an open takedown done (row-locked, with an audit event)."""
    tid = parse_id(takedown_id, "takedown")
    if note is not None:
        note = note.strip() or None
    if note is not None and (len(note) > MAX_NOTE or re.search(r"[\x00-\x08\x0b-\x1f\x7f]", note)):
        raise SpecError(f"--note must be plain text of at most {MAX_NOTE} characters")
    with runtime.sessions.begin() as session:
        row = placements.get_takedown(session, tid, lock=True)
        if row is None:
            raise NotFoundError(f"no takedown {tid}; `castkeep takedowns list` lists takedowns")
        if row.status == "done":
            raise ConsentStateError(f"takedown {tid} is already done (by {row.done_by} at "
                                    f"{row.done_at:%Y-%m-%d %H:%M}Z)")
        return placements.complete_takedown(session, row, note=note, actor=actor).as_dict()
