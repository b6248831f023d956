"""Collects command groups: every flows/cli_*.py module exposes `register(app)`.

Discovery keeps each group in its own small module without a central list to edit.
"""

from __future__ import annotations

import importlib
import pkgutil

import typer

import castkeep.flows as flows_pkg


def register(app: typer.Typer) -> None:
    for info in sorted(pkgutil.iter_modules(flows_pkg.__path__), key=lambda i: i.name):
        if info.name.startswith("cli_") and info.name != "cli_commands":
            module = importlib.import_module(f"castkeep.flows.{info.name}")
            module.register(app)
