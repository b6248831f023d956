"""The edge of the audit log's checkpoints: the key path from settings, and the runtime's hook
that anchors the log every CASTKEEP_AUDIT__CHECKPOINT_EVERY events (real catalogue and store)."""

from __future__ import annotations

import stat

import pytest


def _append(runtime, n: int) -> list[int]:
    from castkeep.db.audit_log import append_event

    seqs = []
    for i in range(n):
        with runtime.sessions.begin() as s:
            seqs.append(append_event(s, actor="ops", kind="k", payload={"i": i}).seq)
    return seqs


def test_runtime_checkpoints_every_n_events_with_the_configured_key(runtime_env, tmp_path, monkeypatch):
    from castkeep.db.audit_anchor import load_key, read_checkpoints
    from castkeep.flows.anchor import anchor_key_path
    from castkeep.flows.runtime import open_runtime
    from castkeep.flows.settings import get_settings

    key_path = tmp_path / "secrets" / "anchor.key"
    monkeypatch.setenv("CASTKEEP_AUDIT__ANCHOR_KEY", str(key_path))
    monkeypatch.setenv("CASTKEEP_AUDIT__CHECKPOINT_EVERY", "3")
    get_settings.cache_clear()
    with open_runtime() as runtime:
        assert anchor_key_path(runtime.settings) == key_path
        seqs = _append(runtime, 7)
        key = load_key(key_path, create=False)
        assert key is not None and stat.S_IMODE(key_path.stat().st_mode) == 0o600
        assert not (runtime_env / "keys" / "audit-anchor.key").exists()
        good, bad = read_checkpoints(runtime.store, key)
    assert bad == [] and [c.seq for c in good] == [s for s in seqs if s % 3 == 0]
    assert len(good) >= 2


@pytest.mark.parametrize("every", ["0", "1000000000"])
def test_no_checkpoint_before_the_boundary_or_when_turned_off(runtime_env, monkeypatch, every):
    from castkeep.flows.anchor import anchor_key_path
    from castkeep.flows.runtime import open_runtime
    from castkeep.flows.settings import get_settings

    monkeypatch.setenv("CASTKEEP_AUDIT__CHECKPOINT_EVERY", every)
    get_settings.cache_clear()
    with open_runtime() as runtime:
        _append(runtime, 3)
        assert list(runtime.store.list_keys("checkpoints")) == []
        assert anchor_key_path(runtime.settings) == runtime_env / "keys" / "audit-anchor.key"
        assert not anchor_key_path(runtime.settings).exists()
