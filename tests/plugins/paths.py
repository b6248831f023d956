"""Fixture photos and an isolated CASTKEEP_HOME."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture
def castkeep_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh data dir for one test, set as CASTKEEP_HOME, settings cache cleared."""
    from castkeep.flows.settings import get_settings

    home = tmp_path / "castkeep-home"
    home.mkdir()
    monkeypatch.setenv("CASTKEEP_HOME", str(home))
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()
