"""castkeep/errors.py: every error's exit code is one of the codes the README's table documents,
and the codes users act on keep their meaning."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from castkeep import errors

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _documented() -> dict[int, str]:
    """code -> meaning, from the table under "### Exit codes"."""
    section = README.split("### Exit codes", 1)[1].split("\n#", 1)[0]
    return {int(m.group(1)): m.group(2).strip()
            for m in re.finditer(r"^\| (\d+) \| ([^|]+) \|", section, re.M)}


ERROR_CLASSES = sorted(
    (cls for _, cls in inspect.getmembers(errors, inspect.isclass)
     if issubclass(cls, errors.CastkeepError)),
    key=lambda cls: cls.__name__,
)


def test_readme_documents_codes_0_to_5():
    assert _documented() == {
        0: "ok",
        1: "partly done",
        2: "bad input or configuration",
        3: "refused by consent or licence",
        4: "withdrawn",
        5: "infrastructure unavailable",
    }


def test_the_error_family_is_found():
    # The parametrised test below must not pass over an empty list.
    names = {cls.__name__ for cls in ERROR_CLASSES}
    assert {"CastkeepError", "ConsentError", "WithdrawnError", "InfrastructureError"} <= names
    assert len(ERROR_CLASSES) >= 20


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_every_error_exits_with_a_documented_failure_code(cls):
    documented = _documented()
    assert cls.exit_code in documented, f"{cls.__name__}.exit_code {cls.exit_code} is undocumented"
    assert cls.exit_code != 0, f"{cls.__name__} would exit 0 (ok)"


@pytest.mark.parametrize("cls, code", [
    (errors.ConfigurationError, 2),
    (errors.ManifestError, 2),
    (errors.NotFoundError, 2),
    (errors.ConsentError, 3),
    (errors.LicenceError, 3),
    (errors.Refused, 3),
    (errors.WithdrawnError, 4),
    (errors.InfrastructureError, 5),
    (errors.DatabaseError, 5),
    (errors.ObjectStoreError, 5),
    # A wrong database setting is fixed by fixing the setting: configuration, not an outage.
    (errors.DatabaseConfigurationError, 2),
])
def test_codes_keep_their_meaning(cls, code):
    assert cls.exit_code == code
