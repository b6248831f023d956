"""Typed outputs of the scorers: one record per check, catalogued with the asset."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ScoreRecord:
    kind: str  # identity | extra_faces | lighting | camera | quality
    value: float
    threshold: float | None
    passed: bool
    talent_id: uuid.UUID | None = None
    face_index: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)
