"""The audit log's checkpoints at the edge: where the anchor key lives (settings), a checkpoint of
the committed head, and the hook that writes one every N audit events (db/audit_anchor.py)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from castkeep.db.audit_anchor import (
    Checkpoint,
    committed_head,
    install_checkpoint_hook,
    load_key,
    write_checkpoint,
)
from castkeep.db.audit_log import ChainHead
from castkeep.flows.settings import Settings

logger = logging.getLogger(__name__)

ANCHOR_KEY_FILE = "audit-anchor.key"


def anchor_key_path(settings: Settings) -> Path:
    """CASTKEEP_AUDIT__ANCHOR_KEY, else <home>/keys/audit-anchor.key."""
    return Path(settings.audit.anchor_key or Path(settings.home) / "keys" / ANCHOR_KEY_FILE).expanduser()


def checkpoint(runtime: Any, head: ChainHead | None = None) -> Checkpoint | None:
    """Anchor `head` (default: the newest committed row); None while the log is empty. The key
    is created on first use."""
    head = head or committed_head(runtime.engine)
    if head is None:
        return None
    key = load_key(anchor_key_path(runtime.settings), create=True)
    written = write_checkpoint(runtime.store, key, head)
    logger.info("audit log checkpoint: seq %d -> %s", written.seq, written.object_key)
    return written


def install(runtime: Any) -> None:
    """Checkpoint after commits that cross a multiple of CASTKEEP_AUDIT__CHECKPOINT_EVERY events."""
    install_checkpoint_hook(
        runtime.sessions, every=runtime.settings.audit.checkpoint_every, write=lambda: checkpoint(runtime)
    )
