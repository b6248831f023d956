"""The built wheel holds every module of the source tree (setup.py discovers the packages under
the mapped folders, so a new sub-package ships without editing a list)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
while not (REPO / "pyproject.toml").exists():  # tests may live in a sub-folder
    REPO = REPO.parent
MAPPED = {"castkeep": "castkeep", "flows": "castkeep/flows", "tasks": "castkeep/tasks",
          "models": "castkeep/models", "db": "castkeep/db", "provenance": "castkeep/provenance"}


@pytest.mark.slow
def test_wheel_contains_every_module(tmp_path: Path):
    import shutil

    had_build = (REPO / "build").exists()
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(REPO)],
        check=True, capture_output=True, timeout=300,
    )
    if not had_build:  # setuptools builds in the source tree
        shutil.rmtree(REPO / "build", ignore_errors=True)
    (wheel,) = tmp_path.glob("castkeep-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = set()
    for folder, installed in MAPPED.items():
        for path in (REPO / folder).rglob("*.py"):
            if "__pycache__" not in path.parts:
                expected.add(f"{installed}/{path.relative_to(REPO / folder).as_posix()}")
    assert expected, "no source modules found"
    assert sorted(expected - names) == []
    assert "castkeep/db/migrations/script.py.mako" in names
    assert any(n.startswith("castkeep/samples/") for n in names)
    # Nothing generic at the top level of site-packages.
    tops = {n.split("/")[0] for n in names if not n.startswith("castkeep-")}
    assert tops == {"castkeep"}
