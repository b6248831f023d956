"""castkeep.flows.cli: the explicit list of command groups, and where the commands reach."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import typer

from castkeep.flows import cli

cli._register()

CLI_DIR = Path(cli.__file__).parent


def _group_modules() -> list[str]:
    return sorted(info.name for info in pkgutil.iter_modules(cli.__path__))


def _module_typers(module) -> list[tuple[str, typer.Typer]]:  # noqa: ANN001
    return [(name, value) for name, value in vars(module).items()
            if isinstance(value, typer.Typer) and value is not cli.app]


def unregistered(app: typer.Typer, modules: list[str]) -> list[str]:
    """What the modules of castkeep.flows.cli define that `app` does not register: a command
    group (typer.Typer) not added with add_typer, or a module that contributes no command or
    group at all."""
    groups = {id(g.typer_instance) for g in app.registered_groups}
    callbacks = {c.callback for c in app.registered_commands}
    missing = []
    for name in modules:
        module = importlib.import_module(f"castkeep.flows.cli.{name}")
        typers = _module_typers(module)
        missing += [f"{name}.{attr}" for attr, group in typers if id(group) not in groups]
        commands = [v for v in vars(module).values()
                    if callable(v) and getattr(v, "__module__", None) == module.__name__
                    and v in callbacks]
        if not typers and not commands:
            missing.append(name)
    return missing


def test_every_group_module_is_registered():
    modules = _group_modules()
    assert {"consent", "request", "verify", "talent", "edit"} <= set(modules)
    assert unregistered(cli.app, modules) == []


def test_a_group_left_out_of_the_list_is_found():
    """The check above fails when a module's group or command is not in `_register`."""
    partial = typer.Typer()
    for group in cli.app.registered_groups:
        if group.name != "consent":
            partial.add_typer(group.typer_instance, name=group.name)
    for command in cli.app.registered_commands:
        if command.name != "verify":
            partial.command(command.name)(command.callback)
    assert unregistered(partial, _group_modules()) == ["consent.consent_app", "verify"]


def test_groups_are_listed_explicitly_not_discovered():
    source = (CLI_DIR / "__init__.py").read_text()
    assert "pkgutil" not in source and "iter_modules" not in source
    assert "app.add_typer(consent.consent_app" in source


def test_help_lists_every_group():
    from typer.testing import CliRunner

    res = CliRunner().invoke(cli.app, ["--help"])
    assert res.exit_code == 0
    for name in ("request", "asset", "consent", "talent", "verify", "edit", "status", "keys",
                 "faces", "db", "audit", "demo", "ingest", "approve", "serve", "gc"):
        assert f" {name} " in res.stdout, name


def _castkeep_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n for n in names if n.startswith("castkeep.")}


def test_commands_reach_the_catalogue_and_models_through_tasks():
    """CLI modules call flows and tasks, never castkeep.db or castkeep.models directly."""
    offenders = {
        path.name: sorted(n for n in _castkeep_imports(path)
                          if n.startswith(("castkeep.db", "castkeep.models")))
        for path in sorted(CLI_DIR.glob("*.py"))
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_orchestration_logs_stay_off_the_console_whatever_their_logger_name():
    import logging

    from castkeep.flows.cli import _CommandOutputOnly

    services = "/venv/lib/python3.11/site-packages/prefect/_internal/concurrency/services.py"

    def record(name: str, path: str) -> logging.LogRecord:
        return logging.LogRecord(name, logging.WARNING, path, 1, "msg", None, None)

    keep = _CommandOutputOnly()
    # Prefect's background services log under their class names.
    assert not keep.filter(record("EventsWorker", services))
    assert not keep.filter(record("prefect.flow_runs", "/x/y.py"))
    assert not keep.filter(record("httpx", "/x/httpx/_client.py"))
    assert keep.filter(record("castkeep.tasks.audit", "/work/tasks/audit.py"))
