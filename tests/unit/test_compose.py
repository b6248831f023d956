"""docker-compose.yml cannot be run here (no Docker); these tests read it and check it against the
settings model, so a renamed setting or a missing service fails here rather than in production."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from castkeep.flows.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")
_ARG_REF = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _interpolate(value: str) -> str:
    """Compose's own ${VAR:-default} rule, with the defaults (as `docker compose up` would use them
    on a machine with no .env)."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return os.environ.get(m.group(1)) or (m.group(2) or "")

    return _VAR.sub(sub, value)


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): _interpolate(str(v)) for k, v in env.items()}


def _resolve_field(name: str) -> str | None:
    """Walk Settings by a CASTKEEP_A__B name; return None if it names a real leaf field, else why not."""
    parts = name.removeprefix("CASTKEEP_").lower().split("__")
    model: type[BaseModel] = Settings
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return f"{name}: {model.__name__} has no field {part!r}"
        ann = field.annotation
        is_model = isinstance(ann, type) and issubclass(ann, BaseModel)
        last = i == len(parts) - 1
        if last and is_model:
            return f"{name}: {part!r} is a section, not a setting"
        if not last:
            if not is_model:
                return f"{name}: {part!r} is a setting, not a section"
            model = ann
    return None


def _castkeep_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        n: s
        for n, s in compose["services"].items()
        if any(k.startswith("CASTKEEP_") for k in _env(s))
    }


def test_required_services_exist(compose):
    services = compose["services"]
    for name in ("postgres", "minio", "minio-init", "prefect-server", "worker-cpu", "worker-gpu"):
        assert name in services, f"missing service {name}"
    assert services["postgres"]["image"].startswith("pgvector/pgvector:")
    assert services["minio"]["image"].startswith("minio/minio")
    assert "prefect" in services["prefect-server"]["image"]
    assert services["prefect-server"]["command"][:3] == ["prefect", "server", "start"]


def test_bucket_job_enables_object_lock_on_every_bucket(compose):
    script = "\n".join(compose["services"]["minio-init"]["command"])
    env = _env(compose["services"]["worker-cpu"])
    for bucket in (env["CASTKEEP_STORAGE__BUCKET"], env["CASTKEEP_STORAGE__RESTRICTED_BUCKET"]):
        assert re.search(rf"mc mb .*--with-lock\s+\S+/{re.escape(bucket)}\s*$", script, re.M), bucket


def test_workers_serve_the_cpu_and_gpu_pools(compose):
    services = compose["services"]
    for name, pool in (("worker-cpu", "cpu"), ("worker-gpu", "gpu")):
        cmd = services[name]["command"]
        assert cmd[:3] == ["prefect", "worker", "start"], name
        assert cmd[cmd.index("--pool") + 1] == pool
        assert cmd[cmd.index("--type") + 1] == "process"
        assert _env(services[name])["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    gpu = services["worker-gpu"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert gpu["runtime"] == "nvidia"
    assert "deploy" not in services["worker-cpu"]


def test_web_serves_the_api_from_the_cpu_image_on_loopback(compose):
    web = compose["services"]["web"]
    assert web["build"]["target"] == "cpu"
    assert web["command"][:2] == ["castkeep", "web"]
    # Bound to every interface inside its container, so only behind the (TLS) proxy rule.
    assert "--behind-proxy" in web["command"]
    port = web["command"][web["command"].index("--port") + 1]
    assert web["ports"] == [f"127.0.0.1:{port}:{port}"]
    assert _env(web)["PREFECT_API_URL"] == "http://prefect-server:4200/api"


def test_every_castkeep_variable_is_a_settings_field(compose):
    services = _castkeep_services(compose)
    assert {"worker-cpu", "worker-gpu", "castkeep-setup"} <= set(services)
    problems = [
        p
        for s in services.values()
        for k in _env(s)
        if k.startswith("CASTKEEP_") and (p := _resolve_field(k))
    ]
    assert problems == []


def test_field_walk_rejects_unknown_names():
    # The checker itself must be able to fail.
    assert _resolve_field("CASTKEEP_STORAGE__KIND") is None
    assert "no field 'bukket'" in _resolve_field("CASTKEEP_STORAGE__BUKKET")
    assert "section" in _resolve_field("CASTKEEP_STORAGE")
    assert "not a section" in _resolve_field("CASTKEEP_HOME__X")


@pytest.mark.parametrize("service", ["worker-cpu", "worker-gpu", "castkeep-setup", "web"])
def test_service_env_parses_into_the_production_settings(compose, service, monkeypatch):
    for key in list(os.environ):
        if key.startswith("CASTKEEP_"):
            monkeypatch.delenv(key)
    env = _env(compose["services"][service])
    for key, value in env.items():
        if key.startswith("CASTKEEP_"):
            monkeypatch.setenv(key, value)
    s = Settings()
    assert s.storage.kind == "s3"
    assert s.storage.endpoint == "minio:9000"
    assert s.storage.secure is False and s.storage.object_lock is True
    assert s.database.url.startswith("postgresql+psycopg://castkeep:")
    assert s.database.url.endswith("@postgres:5432/castkeep")
    assert s.home == Path("/var/lib/castkeep")
    assert s.prefect.gpu_work_pool == "gpu"
    # The MinIO root credentials and the castkeep S3 credentials must be the same pair.
    minio = _env(compose["services"]["minio"])
    assert s.storage.access_key == minio["MINIO_ROOT_USER"]
    assert s.storage.secret_key.get_secret_value() == minio["MINIO_ROOT_PASSWORD"]


def test_database_password_is_shared_with_postgres(compose):
    pg = _env(compose["services"]["postgres"])
    url = _env(compose["services"]["worker-cpu"])["CASTKEEP_DATABASE__URL"]
    assert f"{pg['POSTGRES_USER']}:{pg['POSTGRES_PASSWORD']}@" in url
    assert url.rsplit("/", 1)[1] == pg["POSTGRES_DB"]
    init = compose["configs"]["pg-init"]["content"]
    assert "CREATE EXTENSION IF NOT EXISTS vector" in init


# --- images: every service that builds uses a target of the project's Dockerfile ----------------


def _dockerfile_stages(text: str) -> tuple[dict[str, str], dict[str, list[tuple[str, str]]]]:
    """(global ARG defaults, stage name -> [(INSTRUCTION, arguments)]) of a Dockerfile, with line
    continuations joined; a stage's FROM is its first instruction, with ARGs substituted."""
    lines = re.sub(r"\\\n", " ", text).splitlines()
    args: dict[str, str] = {}
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        instruction, rest = instruction.upper(), rest.strip()
        if instruction == "FROM":
            m = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", rest, re.I)
            assert m and m.group(2), f"every FROM names its stage: {line!r}"
            image = _ARG_REF.sub(lambda a: args.get(a.group(1), a.group(0)), m.group(1))
            current = stages[m.group(2)] = [("FROM", image)]
        elif current is None:
            if instruction == "ARG":
                name, _, default = rest.partition("=")
                args[name] = default
        else:
            current.append((instruction, rest))
    return args, stages


def _resolve_args(value: str, args: dict[str, str]) -> str:
    return _ARG_REF.sub(lambda a: args.get(a.group(1), a.group(0)), value)


@pytest.fixture(scope="module")
def dockerfile() -> tuple[dict[str, str], dict[str, list[tuple[str, str]]]]:
    return _dockerfile_stages((ROOT / "Dockerfile").read_text())


def _built(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in compose["services"].items() if "build" in s}


def test_every_castkeep_service_builds_from_a_declared_dockerfile_target(compose, dockerfile):
    _args, stages = dockerfile
    built = _built(compose)
    # Every service that runs castkeep is built from this project, none from an inline file.
    assert set(_castkeep_services(compose)) <= set(built)
    for name, service in built.items():
        build = service["build"]
        assert "dockerfile_inline" not in build, name
        assert (ROOT / build.get("context", ".") / build["dockerfile"]).is_file(), name
        assert build.get("target") in stages, f"{name}: target {build.get('target')!r} not in {sorted(stages)}"
    assert built["worker-gpu"]["build"]["target"] == "gpu"
    assert built["worker-cpu"]["build"]["target"] == "cpu"
    assert built["castkeep-setup"]["build"]["target"] == "cpu"


def test_dockerfile_targets_run_as_an_unprivileged_user(compose, dockerfile):
    _args, stages = dockerfile
    for target in {s["build"]["target"] for s in _built(compose).values()}:
        users = [rest for instruction, rest in stages[target] if instruction == "USER"]
        assert users, f"stage {target} never leaves root"
        assert users[-1].split(":")[0] not in {"root", "0"}, target


def test_cpu_target_has_cpu_torch_and_gpu_target_cuda_torch(dockerfile):
    args, stages = dockerfile
    pin = re.search(r'"torch==([^"]+)"', (ROOT / "pyproject.toml").read_text())
    assert pin and args["TORCH_VERSION"] == pin.group(1), "the images install pyproject's torch"

    def torch_index(stage: str) -> str:
        runs = [_resolve_args(rest, args) for instruction, rest in stages[stage] if instruction == "RUN"]
        line = next(r for r in runs if "torch==" in r)
        return re.search(r"--index-url\s+(\S+)", line).group(1)

    assert torch_index("cpu").endswith("/whl/cpu")
    assert re.search(r"/whl/cu\d+$", torch_index("gpu"))
    assert stages["gpu"][0][1].startswith("nvidia/cuda:")
    assert not stages["cpu"][0][1].startswith("nvidia/")


def test_dockerfile_parser_sees_stages_users_and_args():
    # The parser itself must be able to fail: a made-up file with a root-only stage.
    args, stages = _dockerfile_stages(
        "ARG BASE=debian:13\nFROM ${BASE} AS one\nRUN a \\\n  b\nUSER app\nFROM one AS two\nRUN c\n"
    )
    assert args == {"BASE": "debian:13"}
    assert stages["one"] == [("FROM", "debian:13"), ("RUN", "a    b"), ("USER", "app")]
    assert [i for i, _ in stages["two"]] == ["FROM", "RUN"]
