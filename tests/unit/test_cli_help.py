"""Every `castkeep ... --help` renders cleanly: flags without a `<bool>` type, description
paragraphs re-wrapped to the terminal (no line broken where the source docstring was), and the
request group's explicit `submit` form beside its `request FILE` shorthand."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from castkeep.flows import cli

cli._register()
WIDTH = 80


def _paths() -> list[list[str]]:
    root = typer.main.get_command(cli.app)
    paths = [[]]

    def walk(group, prefix: list[str]) -> None:  # noqa: ANN001 - a click group
        for name, command in group.commands.items():
            paths.append([*prefix, name])
            if hasattr(command, "commands"):
                walk(command, [*prefix, name])

    walk(root, [])
    return paths


def _help(words: list[str]) -> str:
    result = CliRunner().invoke(cli.app, [*words, "--help"], prog_name="castkeep",
                                terminal_width=WIDTH)
    assert result.exit_code == 0, result.output
    return result.output


def _description(output: str) -> list[list[str]]:
    """The paragraphs between the usage line and the first section (Options, Arguments, ...)."""
    lines = output.splitlines()[1:]
    body = []
    for line in lines:
        if line and not line.startswith(" "):
            break
        body.append(line)
    paragraphs, current = [], []
    for line in body:
        if line.strip():
            current.append(line)
        elif current:
            paragraphs.append(current)
            current = []
    if current:
        paragraphs.append(current)
    return paragraphs


PATHS = _paths()


def test_every_group_and_command_is_walked():
    names = {" ".join(p) for p in PATHS}
    assert {"", "request", "request submit", "audit", "consent revoke", "demo"} <= names


@pytest.mark.parametrize("words", PATHS, ids=lambda w: " ".join(w) or "castkeep")
def test_help_has_plain_flags_and_wrapped_paragraphs(words):
    output = _help(words)
    assert "<bool>" not in output
    assert output.startswith(f"Usage: castkeep {' '.join(words)}".rstrip())
    for paragraph in _description(output):
        assert all(len(line) <= WIDTH for line in paragraph)
        # Re-wrapped: every line but a paragraph's last is filled close to the width.
        for line in paragraph[:-1]:
            assert len(line) >= WIDTH - 25, f"ragged break in `castkeep {' '.join(words)}`: {line!r}"


def test_help_shows_json_as_a_plain_flag():
    output = _help(["request", "submit"])
    assert any(line.split()[:1] == ["--json"] and "Print only JSON" in line
               for line in output.splitlines())


def test_request_help_names_the_explicit_form_and_the_shorthand():
    text = " ".join(_help(["request"]).split())
    assert "castkeep request submit FILE" in text and "castkeep request FILE" in text
    assert "submit" in _help(["request"]).split("Commands:")[1]


@pytest.mark.parametrize("form", [["request", "submit"], ["request"]])
def test_both_forms_reach_submit(form, tmp_path, monkeypatch):
    # A missing file is refused by submit itself (before anything starts), for both forms.
    from castkeep.errors import ManifestError
    from castkeep.flows.settings import get_settings

    monkeypatch.setenv("CASTKEEP_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    missing = tmp_path / "missing.yaml"
    result = CliRunner().invoke(cli.app, [*form, str(missing)], prog_name="castkeep")
    get_settings.cache_clear()
    assert isinstance(result.exception, ManifestError)
    assert str(result.exception) == f"{missing}: request file not found; check the path"
