"""The web app calls flows and tasks only (never db/, models/ or provenance/ directly), like the
CLI, so both surfaces share one behaviour."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[2] / "flows" / "web"
ALLOWED = ("castkeep.flows", "castkeep.tasks", "castkeep.vocab", "castkeep.errors", "castkeep")
FORBIDDEN = ("castkeep.db", "castkeep.models", "castkeep.provenance")


def castkeep_imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("castkeep"):
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names if a.name.startswith("castkeep")]
    return names


@pytest.mark.parametrize("path", sorted(WEB.rglob("*.py")),
                         ids=lambda p: p.relative_to(WEB).as_posix())
def test_web_modules_import_only_flows_and_tasks(path):
    imports = castkeep_imports(path)
    bad = [m for m in imports if m.startswith(FORBIDDEN) or not m.startswith(ALLOWED)]
    assert bad == [], f"{path.name} imports {bad}"


def test_the_check_sees_a_forbidden_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("from castkeep.db.ids import parse_id\nimport castkeep.models.x\n")
    assert castkeep_imports(module) == ["castkeep.db.ids", "castkeep.models.x"]
