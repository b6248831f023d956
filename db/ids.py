"""Ids from outside (command lines, URLs, request bodies) are validated before any lookup, and
every "not found" names the command that shows ids of that kind."""

from __future__ import annotations

import uuid

from castkeep.errors import NotFoundError


# Where a user finds the ids of each kind of catalogued thing (every hint names a real command).
LISTED_BY = {
    "request": "`castkeep request list` lists request ids",
    "asset": "`castkeep asset list` lists asset ids",
    "talent": "`castkeep talent list` lists talents",
    "consent": "`castkeep talent show TALENT` lists a talent's consents",
    "user": "`castkeep users list` lists users",
    "API token": "`castkeep tokens list USER` lists a user's token ids",
    "reference portrait": "`castkeep talent show TALENT` lists a talent's reference portraits",
    "takedown": "`castkeep takedowns list` lists takedown tasks",
}


def where_listed(what: str) -> str:
    """The hint a "not found" about a `what` ends with."""
    return LISTED_BY.get(what, "`castkeep --help` lists the commands")


def parse_id(value: str | uuid.UUID, what: str = "request") -> uuid.UUID:
    """A UUID, or NotFoundError saying what was expected and where such ids are listed."""
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value).strip())
    except ValueError:
        raise NotFoundError(f"{value!r} is not a{'n' if what[0] in 'aeiou' else ''} {what} id "
                            f"(a UUID); {where_listed(what)}") from None
