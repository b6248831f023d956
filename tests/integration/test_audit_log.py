"""The hash-chained audit log: linking, independent hash recomputation, tamper detection,
concurrent appends."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from castkeep.db.audit_log import (
    GENESIS_HASH,
    ChainBreak,
    append_event,
    canonical_json,
    chain_head,
    verify_chain,
)
from castkeep.db.engine import make_engine, session_factory
from castkeep.db.schema import AuditEvent


def _superuser(session) -> bool:
    return session.execute(sa.text("SHOW is_superuser")).scalar_one() == "on"


def _tamper(session, sql: str, **params) -> None:
    """Do what the append-only triggers forbid, as a superuser could: the replica role skips
    ordinary triggers."""
    if not _superuser(session):
        pytest.skip("simulating tampering needs a superuser session")
    session.execute(sa.text("SET LOCAL session_replication_role = replica"))
    session.execute(sa.text(sql), params)
    session.execute(sa.text("SET LOCAL session_replication_role = origin"))
    session.expire_all()


def _three(session) -> list[AuditEvent]:
    return [
        append_event(session, actor="ops", kind="consent.granted", entity_type="consent",
                     entity_id=uuid.UUID(int=1), payload={"scope": ["web"], "n": 1}),
        append_event(session, actor="ops", kind="asset.approved", entity_type="asset",
                     entity_id="a-2", payload={"score": 0.125}),
        append_event(session, actor="auditor", kind="audit.run"),
    ]


def test_events_are_chained_from_genesis(db_session):
    a, b, c = _three(db_session)
    assert a.prev_hash == GENESIS_HASH
    assert b.prev_hash == a.hash and c.prev_hash == b.hash
    assert a.seq < b.seq < c.seq
    assert len({a.hash, b.hash, c.hash}) == 3
    assert a.entity_id == "00000000-0000-0000-0000-000000000001"
    assert verify_chain(db_session) == []


def test_hash_is_sha256_of_prev_hash_and_canonical_fields(db_session):
    event = append_event(db_session, actor="ops", kind="k", entity_type="asset", entity_id="x",
                         payload={"b": [1, 2], "a": "é"})
    db_session.expire_all()
    row = db_session.execute(sa.text("SELECT * FROM audit_event WHERE id = :i"), {"i": event.id}).one()
    fields = {
        "seq": row.seq, "id": str(row.id),
        "at": row.at.astimezone(dt.timezone.utc).isoformat(timespec="microseconds"),
        "actor": "ops", "kind": "k", "entity_type": "asset", "entity_id": "x",
        "payload": {"a": "é", "b": [1, 2]},
    }
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert row.hash == hashlib.sha256((GENESIS_HASH + text).encode()).hexdigest()


def test_orm_update_and_delete_are_refused(db_session):
    event = append_event(db_session, actor="ops", kind="k")
    with pytest.raises(DBAPIError, match="append-only"):
        with db_session.begin_nested():
            event.actor = "someone else"
            db_session.flush()
    db_session.expire_all()
    with pytest.raises(DBAPIError, match="append-only"):
        with db_session.begin_nested():
            db_session.delete(db_session.get(AuditEvent, event.seq))
            db_session.flush()


def test_edited_row_is_reported_by_seq_and_id(db_session):
    a, b, c = _three(db_session)
    _tamper(db_session, "UPDATE audit_event SET payload = '{\"score\": 0.99}' WHERE seq = :s", s=b.seq)
    breaks = verify_chain(db_session)
    assert breaks == [ChainBreak(b.seq, b.id, "row content does not match its hash: the row was edited", "edited")]


def test_edit_with_recomputed_hash_is_caught_at_the_next_row(db_session):
    a, b, c = _three(db_session)
    _tamper(db_session, "UPDATE audit_event SET actor = 'mallory', hash = :h WHERE seq = :s",
            h=hashlib.sha256(b"forged").hexdigest(), s=b.seq)
    breaks = verify_chain(db_session)
    assert [(x.seq, x.kind) for x in breaks] == [(b.seq, "edited"), (c.seq, "deleted")]


def test_deleted_middle_row_is_reported_at_the_row_after_it(db_session):
    a, b, c = _three(db_session)
    _tamper(db_session, "DELETE FROM audit_event WHERE seq = :s", s=b.seq)
    breaks = verify_chain(db_session)
    assert len(breaks) == 1
    assert (breaks[0].seq, breaks[0].id, breaks[0].kind) == (c.seq, c.id, "deleted")
    assert f"after seq {a.seq}" in breaks[0].detail


def test_deleted_first_row_is_reported(db_session):
    a, b, c = _three(db_session)
    _tamper(db_session, "DELETE FROM audit_event WHERE seq = :s", s=a.seq)
    breaks = verify_chain(db_session)
    assert [(x.seq, x.kind) for x in breaks] == [(b.seq, "deleted")]
    assert "start of the log" in breaks[0].detail


def test_deleted_newest_rows_need_the_recorded_head(db_session):
    a, b, c = _three(db_session)
    head = chain_head(db_session)
    assert (head.seq, head.hash) == (c.seq, c.hash)
    newest = c.seq
    _tamper(db_session, "DELETE FROM audit_event WHERE seq = :s", s=newest)
    assert verify_chain(db_session) == []  # the chain alone cannot see a cut tail
    breaks = verify_chain(db_session, expected_head=head)
    assert [(x.seq, x.kind) for x in breaks] == [(newest, "head_missing")]


def test_payload_must_be_json(db_session):
    with pytest.raises(TypeError, match="JSON values only"):
        append_event(db_session, actor="ops", kind="k", payload={"blob": b"\x00"})
    with pytest.raises(ValueError):
        append_event(db_session, actor="", kind="k")
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    event = append_event(db_session, actor="ops", kind="k", payload={"at": when, "id": uuid.UUID(int=5)})
    assert event.payload == {"at": "2026-01-02T03:04:05.000000+00:00",
                             "id": "00000000-0000-0000-0000-000000000005"}
    assert verify_chain(db_session) == []


def test_canonical_json_is_order_independent():
    assert canonical_json({"b": 1, "a": {"d": 2, "c": 3}}) == canonical_json({"a": {"c": 3, "d": 2}, "b": 1})
    assert canonical_json({"a": "é"}) == '{"a":"é"}'


def test_concurrent_appends_never_fork_the_chain(clean_db):
    engine = make_engine(clean_db)
    sessions = session_factory(engine)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(10):
                with sessions.begin() as s:
                    append_event(s, actor=f"w{n}", kind="k", payload={"i": i})
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        with sessions() as s:
            assert s.execute(sa.select(sa.func.count()).select_from(AuditEvent)).scalar_one() == 40
            # No two events share a predecessor.
            assert s.execute(sa.select(sa.func.count(sa.distinct(AuditEvent.prev_hash)))).scalar_one() == 40
            assert verify_chain(s) == []
    finally:
        engine.dispose()
