"""Progress of long work, reported by the code doing it to whoever is following (the CLI).

A caller sets a listener for the duration of a call (`following(listener)`); flows and tasks call
`report(...)` as units finish. Nothing is reported when no one listens, and reporting never
fails the work. A context variable carries the listener, so it reaches code the flow runs in this
process (Prefect copies the context into the threads that run its tasks) and nothing else.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Progress:
    """`done` of `total` units of `unit` (e.g. "variants"), with counts worth showing beside it
    (e.g. passed, rejected, retries), in the order given."""

    unit: str
    done: int
    total: int
    counts: dict[str, int] = field(default_factory=dict)


Listener = Callable[[Progress], None]

_LISTENER: contextvars.ContextVar[Listener | None] = contextvars.ContextVar(
    "castkeep_progress", default=None
)


@contextlib.contextmanager
def following(listener: Listener | None) -> Iterator[None]:
    """Send every report made inside the block (in this context) to `listener`."""
    token = _LISTENER.set(listener)
    try:
        yield
    finally:
        _LISTENER.reset(token)


def report(unit: str, done: int, total: int, **counts: int) -> None:
    listener = _LISTENER.get()
    if listener is None:
        return
    try:
        listener(Progress(unit, int(done), int(total), dict(counts)))
    except Exception:  # a broken display must not fail the work it shows
        log.debug("progress listener failed", exc_info=True)
