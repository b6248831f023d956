"""Signed checkpoints of the audit log in the object store (both stores): the key file, round trip
and legal hold, forged/replaced checkpoints, and what the log shows against them after an
administrator cuts its tail, deletes rows or rewrites the whole chain with castkeep's own hash
function. Real PostgreSQL; tampering is done in SQL past the append-only triggers."""

from __future__ import annotations

import json
import logging
import stat

import pytest
import sqlalchemy as sa

from castkeep.db.audit_anchor import (
    CHECKPOINTS_PREFIX,
    committed_head,
    crosses,
    install_checkpoint_hook,
    load_key,
    read_checkpoints,
    verify_against_checkpoints,
    write_checkpoint,
)
from castkeep.db.audit_log import ChainHead, append_event, verify_chain
from castkeep.db.engine import make_engine, session_factory
from castkeep.errors import ConfigurationError
from tests.plugins.compliance import delete_newest_audit_rows, overwrite_object, rewrite_audit_chain

KEY = bytes(range(32))


@pytest.fixture
def log(clean_db):
    """(engine, sessions, append(n) -> seqs): events committed one transaction each."""
    engine = make_engine(clean_db)
    sessions = session_factory(engine)

    def append(n: int) -> list[int]:
        seqs = []
        for i in range(n):
            with sessions.begin() as s:
                seqs.append(append_event(s, actor="ops", kind="k", payload={"i": i}).seq)
        return seqs

    yield engine, sessions, append
    engine.dispose()


def _kinds(breaks) -> list[tuple[str, int | None]]:
    return [(b.kind, b.seq) for b in breaks]


def test_key_is_created_0600_once_and_then_reused(tmp_path):
    path = tmp_path / "keys" / "audit-anchor.key"
    assert load_key(path, create=False) is None and not path.exists()
    key = load_key(path, create=True)
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_key(path, create=True) == key == load_key(path, create=False)
    assert [p.name for p in path.parent.iterdir()] == ["audit-anchor.key"]  # no temp file left
    path.write_text("not hex\n")
    with pytest.raises(ConfigurationError, match="CASTKEEP_AUDIT__ANCHOR_KEY"):
        load_key(path, create=False)


def test_checkpoint_round_trip_is_held_and_holds_no_key(object_store):
    head = ChainHead(7, "ab" * 32)
    written = write_checkpoint(object_store, KEY, head)
    assert written.object_key.startswith(f"{CHECKPOINTS_PREFIX}/")
    assert object_store.legal_hold(written.object_key) is True
    good, bad = read_checkpoints(object_store, KEY)
    assert bad == [] and [(c.seq, c.hash, c.object_key) for c in good] == [(7, head.hash, written.object_key)]
    data = object_store.get_bytes(written.object_key)
    assert KEY.hex() not in data.decode()
    assert set(json.loads(data)) == {"v", "seq", "hash", "at", "key_id", "mac"}


def test_forged_replaced_and_unverifiable_checkpoints_are_reported(object_store):
    old = write_checkpoint(object_store, KEY, ChainHead(3, "11" * 32))
    new = write_checkpoint(object_store, KEY, ChainHead(9, "22" * 32))
    # Forged: a checkpoint claiming another head, with a MAC copied from a real one.
    record = json.loads(object_store.get_bytes(new.object_key))
    forged = object_store.put_bytes(
        json.dumps({**record, "seq": 5, "hash": "33" * 32}).encode(),
        prefix=CHECKPOINTS_PREFIX, ext="json", media_type="application/json",
    )
    # Signed by a key that is not ours (someone who made their own key).
    other = write_checkpoint(object_store, bytes(32), ChainHead(4, "44" * 32))
    junk = object_store.put_bytes(b"{not json", prefix=CHECKPOINTS_PREFIX, ext="json", media_type="application/json")
    good, bad = read_checkpoints(object_store, KEY)
    assert [c.seq for c in good] == [3, 9]
    details = {b.detail.split(" ", 2)[1]: b.detail for b in bad}
    assert "MAC that does not verify" in details[forged.key] and "(seq 5)" in details[forged.key]
    assert "signed with another key" in details[other.object_key]
    assert "not a castkeep checkpoint" in details[junk.key]
    assert {b.kind for b in bad} == {"checkpoint_invalid"}

    # The newest checkpoint replaced in place by an older authentic one (hiding a cut tail).
    overwrite_object(object_store, new.object_key, object_store.get_bytes(old.object_key))
    good, bad = read_checkpoints(object_store, KEY)
    assert [c.seq for c in good] == [3]
    assert any(new.object_key in b.detail and "replaced" in b.detail for b in bad)

    # Without the key nothing verifies, and each checkpoint says so.
    good, bad = read_checkpoints(object_store, None)
    assert good == [] and all("anchor key is missing" in b.detail for b in bad if b.seq is not None)


def test_cut_tail_is_invisible_to_the_chain_but_not_to_the_checkpoint(log, fs_store):
    engine, sessions, append = log
    seqs = append(5)
    write_checkpoint(fs_store, KEY, committed_head(engine))
    deleted = delete_newest_audit_rows(engine, 2)
    assert deleted == seqs[-2:]
    with sessions() as s:
        assert verify_chain(s) == []  # the chain alone cannot see it
        breaks = verify_against_checkpoints(s, read_checkpoints(fs_store, KEY)[0])
    assert _kinds(breaks) == [("tail_truncated", seqs[-1])]
    assert f"tail truncated: rows {seqs[-2]}..{seqs[-1]} missing" in breaks[0].detail
    assert f"the log now ends at seq {seqs[-3]}" in breaks[0].detail


def test_rows_cut_and_the_log_continued_are_reported(log, fs_store):
    """Cut the tail, then let castkeep append again: the new rows chain onto what is left, so the
    chain is intact and only the checkpoint shows the gap."""
    engine, sessions, append = log
    seqs = append(5)
    write_checkpoint(fs_store, KEY, committed_head(engine))
    delete_newest_audit_rows(engine, 2)
    later = append(2)
    with sessions() as s:
        assert verify_chain(s) == []
        breaks = verify_against_checkpoints(s, read_checkpoints(fs_store, KEY)[0])
    assert _kinds(breaks) == [("rows_missing", seqs[-1])]
    assert f"rows {seqs[-2]}..{later[0] - 1} missing" in breaks[0].detail


def test_whole_chain_rewritten_with_castkeeps_hash_is_reported(log, fs_store):
    engine, sessions, append = log
    seqs = append(6)
    with engine.connect() as conn:
        third = conn.execute(sa.text("SELECT hash FROM audit_event WHERE seq = :s"), {"s": seqs[2]}).scalar_one()
    early = write_checkpoint(fs_store, KEY, ChainHead(seqs[2], third))
    late = write_checkpoint(fs_store, KEY, committed_head(engine))
    with sessions() as s:
        assert verify_against_checkpoints(s, read_checkpoints(fs_store, KEY)[0]) == []

    rewrite_audit_chain(engine, seqs[4], actor="mallory")
    with sessions() as s:
        assert verify_chain(s) == []  # consistent: castkeep's own hash function was used
        breaks = verify_against_checkpoints(s, read_checkpoints(fs_store, KEY)[0])
    assert _kinds(breaks) == [("rewritten", late.seq)]
    assert f"history rewritten at or before seq {late.seq} and after seq {early.seq}" in breaks[0].detail

    rewrite_audit_chain(engine, seqs[1], actor="mallory")
    with sessions() as s:
        breaks = verify_against_checkpoints(s, read_checkpoints(fs_store, KEY)[0])
    assert _kinds(breaks) == [("rewritten", early.seq)]
    assert f"at or before seq {early.seq}:" in breaks[0].detail
    assert "2 checkpoint(s) no longer match" in breaks[0].detail


def test_hook_checkpoints_when_commits_cross_every_n_events(log, fs_store, caplog):
    engine, sessions, append = log
    install_checkpoint_hook(
        sessions, every=3, write=lambda: write_checkpoint(fs_store, KEY, committed_head(engine))
    )
    seqs = append(7)
    anchored = [c.seq for c in read_checkpoints(fs_store, KEY)[0]]
    assert anchored == [s for s in seqs if s % 3 == 0]
    # A rolled-back transaction anchors nothing; one that crosses a boundary anchors its last row.
    with sessions() as s:
        for _ in range(4):
            append_event(s, actor="ops", kind="k")
        s.rollback()
    assert [c.seq for c in read_checkpoints(fs_store, KEY)[0]] == anchored
    with sessions.begin() as s:
        batch = [append_event(s, actor="ops", kind="k").seq for _ in range(4)]
    assert read_checkpoints(fs_store, KEY)[0][-1].seq == batch[-1]

    # A store that fails is logged; the commit stands.
    broken = session_factory(engine)

    def fail() -> None:
        raise OSError("store unwritable")

    install_checkpoint_hook(broken, every=1, write=fail)
    with caplog.at_level(logging.WARNING, logger="castkeep.db.audit_anchor"):
        with broken.begin() as s:
            kept = append_event(s, actor="ops", kind="k").seq
    assert "could not write an audit log checkpoint" in caplog.text and "store unwritable" in caplog.text
    assert committed_head(engine).seq == kept


def test_crosses():
    assert crosses((1, 3), 3) and crosses((3, 3), 3) and crosses((2, 7), 3)
    assert not crosses((1, 2), 3) and not crosses((4, 5), 3) and not crosses((1, 9), 0)
