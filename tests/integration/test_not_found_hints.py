"""Every "not found" a user can meet names a real command that shows the ids they need
(db/ids.py LISTED_BY): malformed ids of each kind, and well-formed ids the catalogue lacks."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from castkeep.db import assets_repo, catalogue
from castkeep.db.ids import LISTED_BY, parse_id
from castkeep.errors import NotFoundError

MISSING = str(uuid.UUID(int=1))

CASES = {
    **{f"malformed {what} id": (lambda what: lambda s: parse_id("nope", what))(what)
       for what in LISTED_BY},
    "malformed request id (catalogue lookup)": lambda s: assets_repo.get_request(s, "nope"),
    "unknown request": lambda s: assets_repo.get_request(s, MISSING),
    "unknown asset": lambda s: assets_repo.get_asset(s, MISSING),
    "unknown talent": lambda s: catalogue.resolve_talent(s, "nobody-at-all"),
    "unknown consent": lambda s: catalogue.get_consent(s, "no-such-consent"),
}


@pytest.fixture(scope="module")
def app():
    from castkeep.flows import cli

    cli._register()
    return cli.app


def _command_words(message: str) -> list[str]:
    """The words of the first `castkeep ...` command a message names, up to its placeholders."""
    match = re.search(r"`castkeep ([^`]+)`", message)
    assert match, f"no `castkeep ...` command in: {message}"
    words = []
    for word in match.group(1).split():
        if word.isupper() or word.startswith("-"):
            break
        words.append(word)
    return words


@pytest.mark.parametrize("case", sorted(CASES))
def test_not_found_names_a_command_that_exists(case, db_session, app):
    with pytest.raises(NotFoundError) as info:
        CASES[case](db_session)
    words = _command_words(str(info.value))
    result = CliRunner().invoke(app, [*words, "--help"], prog_name="castkeep")
    assert result.exit_code == 0, result.output
    # The help shown is that command's own (not, say, `request FILE` taking the words as a file).
    assert result.output.startswith(f"Usage: castkeep {' '.join(words)} "), result.output[:200]


def test_every_kind_of_id_parsed_has_its_own_hint():
    # Each kind the code parses ids as (the CLI, the web API) has an entry in LISTED_BY.
    root = Path(__file__).resolve().parents[1]
    while not (root / "pyproject.toml").exists():
        root = root.parent
    kinds = set()
    for folder in ("db", "tasks", "flows"):
        for path in (root / folder).rglob("*.py"):
            kinds |= set(re.findall(r'(?:parse_id|_uuid)\([^,()]+, "([^"]+)"\)', path.read_text()))
    assert {"request", "asset"} <= kinds
    assert sorted(kinds - set(LISTED_BY)) == []
