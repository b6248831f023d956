"""Checkpoints that anchor the audit log outside the database.

The hash chain (db/audit_log.py) shows an edited or deleted row, but a cut tail leaves no trace
in it, and whoever can write the table can recompute every hash with castkeep's own function. A
checkpoint records the chain's head ``{seq, hash, at}`` with an HMAC-SHA256 under a key that is
not in the database (a key file, 0600), and is stored as a JSON object under ``checkpoints/`` in
the object store with a legal hold (S3 object lock). Checking the log against every checkpoint
then finds:

- a forged or altered checkpoint (its MAC does not verify under the key);
- a cut tail (the newest checkpoint's seq is past the end of the log);
- deleted rows (a checkpointed seq is gone from the middle of the log);
- rewritten history (the row at a checkpointed seq has another hash).

Checkpoints are written by the edge: after every audit run, by `castkeep audit verify-log` when
the log is intact, and after any commit whose audit events cross a multiple of N
(`install_checkpoint_hook`). Nothing here reads settings: paths, N and the store are passed in.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

from castkeep.db.audit_log import APPENDED_SPAN, ChainBreak, ChainHead, canonical_json
from castkeep.db.object_store import ObjectStore, parse_key
from castkeep.db.schema import AuditEvent
from castkeep.errors import ConfigurationError

logger = logging.getLogger(__name__)

CHECKPOINTS_PREFIX = "checkpoints"
FORMAT_VERSION = 1
_KEY_BYTES = 32

# ChainBreak kinds found by checking the log against its checkpoints.
TAIL_TRUNCATED = "tail_truncated"
ROWS_MISSING = "rows_missing"
REWRITTEN = "rewritten"
CHECKPOINT_INVALID = "checkpoint_invalid"


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    at: str
    key_id: str
    object_key: str | None = None


# --- the key ------------------------------------------------------------------------------------


def load_key(path: Path, *, create: bool) -> bytes | None:
    """The anchor key in `path` (hex, 32 bytes). Created 0600 (its folder 0700) when missing and
    `create`; None when missing otherwise. The key itself is never logged."""
    path = Path(path).expanduser()
    try:
        return _parse_key(path, path.read_text())
    except FileNotFoundError:
        if not create:
            return None
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".anchor-")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(_KEY_BYTES) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
            os.link(tmp, path)
    finally:
        os.unlink(tmp)
    logger.info("created the audit anchor key %s", path)
    return _parse_key(path, path.read_text())


def _parse_key(path: Path, text: str) -> bytes:
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        key = b""
    if len(key) < 16:
        raise ConfigurationError(
            f"the audit anchor key {path} is not a hex key of at least 16 bytes; restore it from "
            "backup or point CASTKEEP_AUDIT__ANCHOR_KEY at the right file"
        )
    return key


def key_id(key: bytes) -> str:
    """A short public name for a key (which key signed a checkpoint), revealing nothing of it."""
    return hmac.new(key, b"castkeep audit anchor key id", hashlib.sha256).hexdigest()[:16]


def _mac(key: bytes, body: dict[str, Any]) -> str:
    return hmac.new(key, canonical_json(body).encode("utf-8"), hashlib.sha256).hexdigest()


# --- writing and reading checkpoints ------------------------------------------------------------


def write_checkpoint(store: ObjectStore, key: bytes, head: ChainHead, *, at: dt.datetime | None = None) -> Checkpoint:
    """Store a signed checkpoint of `head` (a committed row) and put it under legal hold."""
    at = at or dt.datetime.now(dt.timezone.utc)
    body = {
        "v": FORMAT_VERSION,
        "seq": int(head.seq),
        "hash": head.hash,
        "at": at.astimezone(dt.timezone.utc).isoformat(timespec="microseconds"),
        "key_id": key_id(key),
    }
    data = canonical_json({**body, "mac": _mac(key, body)}).encode("utf-8")
    stored = store.put_bytes(data, prefix=CHECKPOINTS_PREFIX, ext="json", media_type="application/json")
    store.set_legal_hold(stored.key, True)
    return Checkpoint(body["seq"], body["hash"], body["at"], body["key_id"], stored.key)


def read_checkpoints(store: ObjectStore, key: bytes | None) -> tuple[list[Checkpoint], list[ChainBreak]]:
    """(checkpoints whose MAC verifies, oldest first; a CHECKPOINT_INVALID break for every other
    object under checkpoints/). Without a key, every checkpoint is unverifiable."""
    good: list[Checkpoint] = []
    bad: list[ChainBreak] = []
    for object_key in store.list_keys(CHECKPOINTS_PREFIX):
        data = store.get_bytes(object_key)
        checkpoint, problem = _parse_checkpoint(object_key, data, key)
        if checkpoint is not None:
            good.append(checkpoint)
        else:
            bad.append(problem)
    good.sort(key=lambda c: (c.seq, c.at))
    bad.sort(key=lambda b: (b.seq is None, b.seq or 0, b.detail))
    return good, bad


def _parse_checkpoint(
    object_key: str, data: bytes, key: bytes | None
) -> tuple[Checkpoint | None, ChainBreak | None]:
    def invalid(why: str, seq: int | None = None) -> tuple[None, ChainBreak]:
        return None, ChainBreak(seq, None, f"checkpoint {object_key} {why}", CHECKPOINT_INVALID)

    try:
        record = json.loads(data)
        body = {name: record[name] for name in ("v", "seq", "hash", "at", "key_id")}
        mac = record["mac"]
        seq = body["seq"]
        if not isinstance(seq, int) or not isinstance(mac, str) or not isinstance(body["hash"], str):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        return invalid("is not a castkeep checkpoint (unreadable or fields missing)")
    if key is None:
        return invalid(f"(seq {seq}) cannot be verified: the anchor key is missing; restore it from backup", seq)
    if body["key_id"] != key_id(key):
        return invalid(
            f"(seq {seq}) was signed with another key (key id {body['key_id']}, the configured key is "
            f"{key_id(key)}): forged, or the anchor key was replaced", seq,
        )
    if not hmac.compare_digest(mac, _mac(key, body)):
        return invalid(f"(seq {seq}) has a MAC that does not verify under the anchor key: forged", seq)
    if hashlib.sha256(data).hexdigest() != parse_key(object_key)["sha"]:
        # Authentic content under another object's key: an older checkpoint copied over a newer one.
        return invalid(f"(seq {seq}) was replaced after it was written: its content does not match its key", seq)
    return Checkpoint(seq, body["hash"], str(body["at"]), str(body["key_id"]), object_key), None


# --- checking the log against its checkpoints ----------------------------------------------------


def verify_against_checkpoints(session: Session, checkpoints: list[Checkpoint]) -> list[ChainBreak]:
    """Breaks between the log and (verified) checkpoints: a cut tail, deleted rows, rewritten
    history. Empty when every checkpointed row is still there with the recorded hash."""
    if not checkpoints:
        return []
    seqs = sorted({c.seq for c in checkpoints})
    rows = {
        r.seq: r
        for r in session.execute(
            sa.select(AuditEvent.seq, AuditEvent.id, AuditEvent.hash).where(AuditEvent.seq.in_(seqs))
        )
    }
    last = session.execute(sa.select(sa.func.max(AuditEvent.seq))).scalar_one() or 0
    breaks: list[ChainBreak] = []

    newest = max(checkpoints, key=lambda c: (c.seq, c.at))
    if newest.seq > last:
        breaks.append(ChainBreak(
            newest.seq, None,
            f"tail truncated: rows {last + 1}..{newest.seq} missing (the checkpoint of {newest.at} "
            f"recorded seq {newest.seq}; the log now ends at seq {last or 'nothing'})",
            TAIL_TRUNCATED,
        ))

    gaps: dict[tuple[int, int], list[int]] = {}
    for seq in seqs:
        if seq in rows or seq > last:
            continue
        before = session.execute(sa.select(sa.func.max(AuditEvent.seq)).where(AuditEvent.seq < seq)).scalar_one() or 0
        after = session.execute(sa.select(sa.func.min(AuditEvent.seq)).where(AuditEvent.seq > seq)).scalar_one()
        gaps.setdefault((before + 1, after - 1), []).append(seq)
    for (low, high), anchored in sorted(gaps.items()):
        breaks.append(ChainBreak(
            anchored[0], None,
            f"rows deleted: rows {low}..{high} missing (checkpointed seq "
            f"{', '.join(str(s) for s in anchored)} no longer in the log)",
            ROWS_MISSING,
        ))

    matched: int | None = None
    mismatched: list[Checkpoint] = []
    for c in checkpoints:  # oldest first
        row = rows.get(c.seq)
        if row is None:
            continue
        if row.hash == c.hash:
            if not mismatched:
                matched = c.seq
        else:
            mismatched.append(c)
    if mismatched:
        first = mismatched[0]
        since = f" and after seq {matched} (the last checkpoint that still matches)" if matched else ""
        breaks.append(ChainBreak(
            first.seq, rows[first.seq].id,
            f"history rewritten at or before seq {first.seq}{since}: the row's hash is "
            f"{rows[first.seq].hash[:16]}…, the checkpoint of {first.at} recorded {first.hash[:16]}… "
            f"({len(mismatched)} checkpoint(s) no longer match)",
            REWRITTEN,
        ))
    return breaks


def committed_head(engine: sa.engine.Engine) -> ChainHead | None:
    """The newest committed row, read on a connection of its own."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
        ).first()
    return ChainHead(row.seq, row.hash) if row else None


# --- every N events -----------------------------------------------------------------------------


def crosses(span: tuple[int, int], every: int) -> bool:
    """Whether seqs span[0]..span[1] include a multiple of `every`."""
    first, last = span
    return every > 0 and (first - 1) // every != last // every


def install_checkpoint_hook(sessions: Any, *, every: int, write: Callable[[], Any]) -> None:
    """After a commit of a session from `sessions` (a sessionmaker) whose audit events cross a
    multiple of `every`, call `write()` (which anchors the committed head). A failure to
    write is logged, never raised: the commit has already happened, and the next checkpoint (or
    audit run) anchors the log again."""
    if every <= 0:
        return

    def after_commit(session: Session) -> None:
        span = session.info.pop(APPENDED_SPAN, None)
        if span is None or not crosses(span, every):
            return
        try:
            write()
        except Exception as exc:  # noqa: BLE001 - see docstring
            logger.warning("could not write an audit log checkpoint after seq %d: %s", span[1], exc)

    def after_rollback(session: Session) -> None:
        session.info.pop(APPENDED_SPAN, None)

    event.listen(sessions, "after_commit", after_commit)
    event.listen(sessions, "after_rollback", after_rollback)
