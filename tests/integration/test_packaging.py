"""The built wheel holds every module of the source tree (setup.py discovers the packages under
the mapped folders, so a new sub-package ships without editing a list), and, installed away from
the checkout, serves its deployments and fulfils a request."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.plugins.request import request_doc, write_request

REPO = Path(__file__).resolve().parents[1]
while not (REPO / "pyproject.toml").exists():  # tests may live in a sub-folder
    REPO = REPO.parent
MAPPED = {"castkeep": "castkeep", "flows": "castkeep/flows", "tasks": "castkeep/tasks",
          "models": "castkeep/models", "db": "castkeep/db", "provenance": "castkeep/provenance"}


def _build_wheel(dest: Path) -> Path:
    import shutil

    had_build = (REPO / "build").exists()
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(dest), str(REPO)],
        check=True, capture_output=True, timeout=300,
    )
    if not had_build:  # setuptools builds in the source tree
        shutil.rmtree(REPO / "build", ignore_errors=True)
    (wheel,) = dest.glob("castkeep-*.whl")
    return wheel


@pytest.mark.slow
def test_wheel_contains_every_module(tmp_path: Path):
    wheel = _build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = set()
    for folder, installed in MAPPED.items():
        for path in (REPO / folder).rglob("*.py"):
            if "__pycache__" not in path.parts:
                expected.add(f"{installed}/{path.relative_to(REPO / folder).as_posix()}")
    assert expected, "no source modules found"
    assert sorted(expected - names) == []
    assert "castkeep/db/migrations/script.py.mako" in names
    assert "castkeep/flows/prefect.yaml" in names  # what `castkeep serve` reads
    assert any(n.startswith("castkeep/samples/") for n in names)
    # Nothing generic at the top level of site-packages.
    tops = {n.split("/")[0] for n in names if not n.startswith("castkeep-")}
    assert tops == {"castkeep"}


def _wheel_venv(tmp_path: Path) -> Path:
    """A venv holding only the built castkeep wheel, on top of the test environment's packages.

    The dependency stack is not reinstalled: the venv is made with --system-site-packages and a
    .pth file puts this interpreter's site-packages on its path. A path line in a .pth file is
    only appended to sys.path: the .pth files of that directory are not run, so the editable
    install's import hook (an `import` line in its .pth) stays out and `castkeep` resolves to the
    wheel in the venv's own site-packages, which comes first. The wheel is installed (--no-deps)
    before that .pth exists, so pip finds no other castkeep to replace."""
    wheel = _build_wheel(tmp_path / "dist")
    venv = tmp_path / "venv"
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", "--system-site-packages",
                    str(venv)], check=True, capture_output=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                    "--no-index", "-q", str(wheel)], check=True, capture_output=True, timeout=300)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    (Path(site) / "castkeep_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


@pytest.mark.slow
def test_installed_wheel_serves_and_fulfils_outside_the_checkout(request_env, prefect_harness,
                                                                 tmp_path: Path):
    from prefect.settings import PREFECT_API_URL

    venv = _wheel_venv(tmp_path)
    elsewhere = tmp_path / "elsewhere"  # the working directory: no checkout in sight
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(CASTKEEP_HOME=str(request_env.home), PREFECT_API_URL=PREFECT_API_URL.value(),
               PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")

    def run(*args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), cwd=elsewhere, env=env, capture_output=True, text=True,
                              timeout=timeout)

    # The code that runs is the wheel's, and the deployments it serves are the shipped ones.
    where = run(str(venv / "bin" / "python"), "-c",
                "import castkeep, json\n"
                "from castkeep.flows import serve as s\n"
                "print(json.dumps({'package': castkeep.__file__, 'plan': str(s.default_prefect_file()),\n"
                "  'entrypoints': sorted(d.entrypoint for d in s.to_runner_deployments(s.load_plan()))}))")
    assert where.returncode == 0, where.stderr[-3000:]
    found = json.loads(where.stdout.strip().splitlines()[-1])
    assert Path(found["package"]).is_relative_to(venv)
    assert Path(found["plan"]) == Path(found["package"]).parent / "flows" / "prefect.yaml"
    assert "castkeep.flows.fulfil_request.fulfil_variant" in found["entrypoints"]
    assert all(e.startswith("castkeep.flows.") for e in found["entrypoints"])

    setup = run(str(venv / "bin" / "castkeep"), "serve", "--setup", "--no-serve")
    assert setup.returncode == 0, setup.stderr[-3000:]
    assert "gpu concurrency limit:" in setup.stdout and "cpu" in setup.stdout

    path = write_request(elsewhere, request_doc(variants=1, lighting={"azimuth": 60}))
    done = run(str(venv / "bin" / "castkeep"), "request", "submit", str(path), "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["status"] == "completed"
    (asset,) = result["assets"]
    assert asset["passed"] is True
