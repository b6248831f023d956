"""The words castkeep's catalogue, manifests and specs share, defined once.

StrEnum members compare equal to their plain strings, so rows, JSON documents and YAML files
keep storing the words themselves; code names them through these enums.
"""

from __future__ import annotations

from enum import StrEnum


class AssetStatus(StrEnum):
    CANDIDATE = "candidate"
    APPROVED = "approved"
    REJECTED = "rejected"
    PUBLISHED = "published"
    QUARANTINED = "quarantined"


class RequestStatus(StrEnum):
    RECEIVED = "received"
    REFUSED = "refused"
    RUNNING = "running"
    AWAITING_APPROVAL = "awaiting_approval"
    COMPLETED = "completed"
    FAILED = "failed"


class ConsentStatus(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"
    EXPIRED = "expired"


class EditKind(StrEnum):
    """What an edit changed; consent scopes allow them by these names."""

    LIGHTING = "lighting"
    CAMERA = "camera"
    BACKGROUND = "background"
    WARDROBE = "wardrobe"
    EXPRESSION = "expression"
    GROUP_COMPOSITE = "group_composite"


class ScoreKind(StrEnum):
    IDENTITY = "identity"
    EXTRA_FACES = "extra_faces"
    LIGHTING = "lighting"
    CAMERA = "camera"
    QUALITY = "quality"


class Relationship(StrEnum):
    """How an asset relates to what it was made from (C2PA ingredient relationships)."""

    PARENT_OF = "parentOf"
    COMPONENT_OF = "componentOf"


class Role(StrEnum):
    """What a signed-in person may do (a person may hold several)."""

    REQUESTER = "requester"
    REVIEWER = "reviewer"
    COMPLIANCE = "compliance"
    ADMIN = "admin"


class EngineName(StrEnum):
    CLASSICAL = "classical"
    QWEN_IMAGE_EDIT = "qwen-image-edit"


# Statuses in which an asset is (or may become) in use, and those that withdraw it.
LIVE_ASSET_STATUSES = (AssetStatus.CANDIDATE, AssetStatus.APPROVED, AssetStatus.PUBLISHED)
WITHDRAWN_ASSET_STATUSES = (AssetStatus.QUARANTINED, AssetStatus.REJECTED)
FINAL_REQUEST_STATUSES = (
    RequestStatus.REFUSED,
    RequestStatus.AWAITING_APPROVAL,
    RequestStatus.COMPLETED,
)


def values(enum: type[StrEnum]) -> tuple[str, ...]:
    """The plain words of an enum, in definition order (for CHECK constraints and messages)."""
    return tuple(member.value for member in enum)
