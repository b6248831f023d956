"""README.md stays true: every `castkeep ...` command it shows exists (with the options it names),
every CASTKEEP_ variable is a setting (or one the tests or the compose file read), and every
deployment it names is in prefect.yaml."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from castkeep.flows import serve as serve_mod
from castkeep.flows.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
# Read elsewhere than the settings model: the test database (tests/plugins/db.py) and the host
# models folder of docker-compose.yml.
OTHER_VARS = {"CASTKEEP_TEST_DATABASE_URL": "tests/plugins/db.py",
              "CASTKEEP_MODELS_DIR": "docker-compose.yml",
              # read before Settings exist, by the client that may hand the command over
              "CASTKEEP_COMMAND_SERVER": "flows/command_client.py"}


def _commands() -> list[list[str]]:
    """`castkeep a b --opt ...` from code blocks and inline code: words up to the first argument."""
    found = []
    for text in re.findall(r"```bash\n(.*?)```", README, re.S) + re.findall(r"`([^`\n]+)`", README):
        for m in re.finditer(r"(?:\.venv/bin/)?castkeep((?: [a-z][a-z-]*| \[?--[a-z-]+(?: [A-Z_]+)?\]?| [A-Z_]+)*)", text):
            found.append(m.group(1).split())
    return [c for c in found if c]


def _words_and_options(cmd: list[str]) -> tuple[list[str], list[str]]:
    words = []
    for w in cmd:  # the command path: lower-case words before the first argument or option
        if not re.fullmatch(r"[a-z][a-z-]*", w):
            break
        words.append(w)
    options = [w.strip("[]") for w in cmd if w.strip("[]").startswith("--")]
    return words, options


@pytest.fixture(scope="module")
def app():
    from castkeep.flows.cli import _register, app

    _register()
    return app


def test_readme_names_commands():
    names = {" ".join(_words_and_options(c)[0]) for c in _commands()}
    assert {"demo", "status", "db stop", "db upgrade", "db current", "serve", "audit",
            "audit verify-log", "consent revoke"} <= names


@pytest.mark.parametrize("cmd", _commands(), ids=lambda c: " ".join(c))
def test_every_command_and_option_exists(app, cmd):
    words, options = _words_and_options(cmd)
    result = CliRunner().invoke(app, [*words, "--help"], prog_name="castkeep")
    assert result.exit_code == 0, result.output
    assert f"castkeep {' '.join(words)}".rstrip() in " ".join(result.output.split())
    # --debug is the global option (`castkeep --debug <command>`).
    for option in options:
        where = result.output if option != "--debug" else CliRunner().invoke(app, ["--help"], prog_name="castkeep").output
        assert option in where, f"castkeep {' '.join(words)} has no {option}"


def _is_setting(var: str) -> bool:
    parts = var.removeprefix("CASTKEEP_").lower().split("__")
    model = Settings
    for part in parts:
        fields = model.model_fields
        if part not in fields:
            return False
        model = fields[part].annotation
    return True


def test_every_castkeep_variable_is_read_somewhere():
    variables = set(re.findall(r"\bCASTKEEP_[A-Z_]+[A-Z]", README))
    assert "CASTKEEP_PREFECT__GPU_WORK_POOL" in variables
    for var in sorted(variables):
        if var in OTHER_VARS:
            assert var in (ROOT / OTHER_VARS[var]).read_text(), var
        else:
            assert _is_setting(var), f"{var} is not a castkeep setting"


def test_deployments_named_in_the_readme_are_in_prefect_yaml():
    section = README.split("### Deployments and schedules", 1)[1].split("```", 1)[0]
    named = set(re.findall(r"`([a-z]+(?:-[a-z]+)+|ingest)` \(", section))
    assert named == {d.name for d in serve_mod.load_plan()}
    assert f"all {['one', 'two', 'three', 'four', 'five', 'six'][len(named) - 1]}" in README


@pytest.mark.parametrize("words, option", [(["audit"], "--expiring-days"), (["serve"], "--only"),
                                           (["serve"], "--no-serve"), ([], "--debug")])
def test_options_named_in_the_prose_exist(app, words, option):
    assert option in README
    result = CliRunner().invoke(app, [*words, "--help"], prog_name="castkeep")
    assert result.exit_code == 0 and option in result.output
