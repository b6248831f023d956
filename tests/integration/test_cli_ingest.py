"""`castkeep ingest`: the real command in a subprocess (JSON shape, exit codes) and crash safety:
a real ingest killed with SIGKILL mid-way, then re-run, leaves every portrait exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from castkeep.db import schema
from tests.plugins.ingest import SAMPLES, augment_jpeg, manifest_doc, write_manifest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli_env(runtime_env, prefect_harness, tmp_path):
    """Environment for a `castkeep` subprocess: this test's catalogue and home, and the test
    session's Prefect API (no ephemeral server start per command)."""
    from prefect.settings import PREFECT_API_URL

    env = dict(os.environ)
    env["PREFECT_API_URL"] = PREFECT_API_URL.value()
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    return env


def castkeep(*args, env, timeout=300):
    exe = Path(sys.executable).with_name("castkeep")
    return subprocess.run([str(exe), *args], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


def test_json_output_is_exactly_the_summary(cli_env, tmp_path):
    folder = tmp_path / "refs"
    import shutil

    shutil.copytree(SAMPLES, folder)
    (folder / "stray.png").write_bytes(b"not an image")
    proc = castkeep("ingest", str(folder), "--json", env=cli_env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "accepted": 3, "duplicates": 0,
        "rejected": [{"file": "stray.png",
                      "reason": "no valid consent manifest names this portrait; add it to one"}]}
    again = castkeep("ingest", str(folder), "--json", env=cli_env)
    assert json.loads(again.stdout)["duplicates"] == 3 and json.loads(again.stdout)["accepted"] == 0


def test_examples_folder_from_repo_root(cli_env):
    assert (REPO / "examples" / "references").resolve() == SAMPLES
    proc = castkeep("ingest", "examples/references", env=cli_env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "accepted 3, duplicates 0, rejected 0"


def test_unusable_path_exits_2(cli_env, tmp_path):
    proc = castkeep("ingest", str(tmp_path / "missing"), "--json", env=cli_env)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == f"error: {tmp_path / 'missing'}: no such folder; give a folder of portraits and manifests"


def _counts(url):
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {t.__tablename__: conn.scalar(select(func.count()).select_from(t))
                    for t in (schema.Talent, schema.Consent, schema.ReferencePortrait, schema.Face)}
    finally:
        engine.dispose()


def _assert_no_half_rows(url):
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            # Every reference has its face and its audit event; every consent its granted event
            # and at least one reference (they are written in the same transaction).
            assert conn.scalar(text(
                "SELECT count(*) FROM reference_portrait r WHERE NOT EXISTS "
                "(SELECT 1 FROM face f WHERE f.reference_portrait_id = r.id)")) == 0
            assert conn.scalar(text(
                "SELECT count(*) FROM reference_portrait r WHERE NOT EXISTS (SELECT 1 FROM "
                "audit_event a WHERE a.kind = 'reference.added' AND a.entity_id = r.id::text)")) == 0
            assert conn.scalar(text(
                "SELECT count(*) FROM consent c WHERE NOT EXISTS (SELECT 1 FROM consent_event e "
                "WHERE e.consent_id = c.id AND e.kind = 'granted') OR NOT EXISTS "
                "(SELECT 1 FROM reference_portrait r WHERE r.consent_id = c.id)")) == 0
            assert conn.scalar(text("SELECT count(*) FROM reference_portrait")) == conn.scalar(
                text("SELECT count(DISTINCT sha256) FROM reference_portrait"))
    finally:
        engine.dispose()


def _object_keys(home: Path, prefix: str) -> set[str]:
    from castkeep.flows.runtime import build_store
    from castkeep.flows.settings import get_settings

    return set(build_store(get_settings()).list_keys(prefix))


def _row_keys(url) -> set[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            keys = set(conn.scalars(text("SELECT object_key FROM reference_portrait")))
            keys |= set(conn.scalars(text("SELECT release_doc_key FROM consent")))
            return keys
    finally:
        engine.dispose()


def test_sigkill_mid_ingest_then_rerun_is_exactly_once(cli_env, clean_db, runtime_env, tmp_path, sample_rgb):
    from castkeep.db.audit_log import verify_chain
    from castkeep.flows.runtime import open_runtime

    folder = tmp_path / "drop"
    folder.mkdir()
    people = {"crash-a": ("obama.jpg", "obama2.jpg"), "crash-b": ("biden.jpg",)}
    total = 0
    for ref, sources in people.items():
        names = []
        for i in range(12 if ref == "crash-a" else 6):
            name = f"{ref}-{i:02d}.jpg"
            (folder / name).write_bytes(augment_jpeg(sample_rgb[sources[i % len(sources)]], i))
            names.append(name)
        write_manifest(folder, f"{ref}.yaml", manifest_doc(names, ref=ref, release=f"{ref}.txt"))
        total += len(names)

    proc = subprocess.Popen([str(Path(sys.executable).with_name("castkeep")), "ingest", str(folder),
                             "--json", "--chunk-size", "4"], env=cli_env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    killed_at = None
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            n = _counts(clean_db)["reference_portrait"]
            if n >= 3:
                proc.send_signal(signal.SIGKILL)
                killed_at = n
                break
            time.sleep(0.02)
    finally:
        if proc.poll() is None and killed_at is None:
            proc.kill()
        proc.wait(timeout=30)
    assert killed_at is not None, proc.stderr.read().decode()[-2000:]
    assert proc.returncode == -signal.SIGKILL
    after_kill = _counts(clean_db)
    assert 3 <= after_kill["reference_portrait"] < total  # killed mid-way
    _assert_no_half_rows(clean_db)

    # Objects stored without rows (if the kill landed between store and commit) are orphans;
    # gc removes exactly those.
    stored = _object_keys(runtime_env, "references") | _object_keys(runtime_env, "restricted")
    rows = _row_keys(clean_db)
    assert rows <= stored
    gc = castkeep("gc", "--grace-hours", "0", "--json", env=cli_env)
    assert gc.returncode == 0, gc.stderr
    assert set(json.loads(gc.stdout)["removed"]) == stored - rows
    assert _object_keys(runtime_env, "references") | _object_keys(runtime_env, "restricted") == rows

    rerun = castkeep("ingest", str(folder), "--json", env=cli_env)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert summary["rejected"] == []
    assert summary["duplicates"] == after_kill["reference_portrait"]
    assert summary["accepted"] == total - after_kill["reference_portrait"]
    final = _counts(clean_db)
    assert final == {"talent": 2, "consent": 2, "reference_portrait": total, "face": total}
    _assert_no_half_rows(clean_db)
    assert _object_keys(runtime_env, "references") | _object_keys(runtime_env, "restricted") == _row_keys(clean_db)
    with open_runtime() as rt, rt.sessions() as s:
        assert verify_chain(s) == []
