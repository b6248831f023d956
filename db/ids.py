"""Ids from outside (command lines, URLs, request bodies) are validated before any lookup."""

from __future__ import annotations

import uuid

from castkeep.errors import NotFoundError


def parse_id(value: str | uuid.UUID, what: str = "request") -> uuid.UUID:
    """A UUID, or NotFoundError saying what was expected."""
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value).strip())
    except ValueError:
        raise NotFoundError(f"{value!r} is not a{'n' if what[0] in 'aeiou' else ''} {what} id "
                            "(a UUID)") from None
