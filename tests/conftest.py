"""Shared pytest set-up. Fixture plugins live in tests/plugins/<area>.py and are all loaded
here, so each area owns its fixtures without a central list to edit."""

from __future__ import annotations

import pkgutil
from pathlib import Path

_PLUGINS = Path(__file__).parent / "plugins"

pytest_plugins = [
    f"tests.plugins.{info.name}" for info in pkgutil.iter_modules([str(_PLUGINS)])
]
