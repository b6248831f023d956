"""Consent revocation and expiry flows: end a consent and quarantine every asset it covered
(lineage) and every asset showing the talent's face without other cover (face search)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from castkeep.flows.flow_type import flow
from castkeep.flows.components import encoder_profile
from castkeep.tasks import revoke as cascade
from castkeep.tasks.retry import retry_unless_user_error

revoke_task = task(name="revoke-consent", cache_policy=NO_CACHE, retries=2,
                   retry_delay_seconds=5, retry_condition_fn=retry_unless_user_error)(
    cascade.revoke)
due_consents_task = task(name="consents-past-due", cache_policy=NO_CACHE)(cascade.due_consents)

if TYPE_CHECKING:
    from castkeep.models.faces.face_types import EncoderInfo


def _face_profile(settings) -> EncoderInfo:
    return encoder_profile(settings.faces)


@flow(name="revoke-consent")
def revoke_consent(consent_id: str, reason: str) -> dict[str, Any]:
    """Revoke one consent (idempotent: a second run changes nothing)."""
    from castkeep.flows.runtime import open_runtime

    logger = get_run_logger()
    with open_runtime() as runtime:
        result = revoke_task(runtime, consent_id=consent_id, reason=reason, status="revoked",
                             face=_face_profile(runtime.settings))
    logger.info(
        "consent %s %s: %d asset(s) quarantined (%d by lineage, %d by face), %d takedown(s) opened",
        result.consent_id,
        "revoked" if result.changed else "was already revoked",
        len(result.quarantined),
        len(result.derived),
        len(result.face_matched),
        len(result.takedowns),
    )
    return result.as_dict()


@flow(name="expire-consents")
def expire_consents() -> dict[str, Any]:
    """Mark every active consent past valid_until expired and run its quarantine cascade."""
    from castkeep.flows.runtime import open_runtime

    logger = get_run_logger()
    at = dt.datetime.now(dt.timezone.utc)
    with open_runtime() as runtime:
        face = _face_profile(runtime.settings)
        due = due_consents_task(runtime, at)
        results = [
            revoke_task(runtime, consent_id=cid, status="expired", face=face,
                        reason=f"valid_until passed (checked {at.isoformat()})")
            for cid in due
        ]
    quarantined = sorted({a for r in results for a in r.quarantined})
    takedowns = [t for r in results for t in r.takedowns]
    logger.info("%d consent(s) expired, %d asset(s) quarantined, %d takedown(s) opened",
                len(results), len(quarantined), len(takedowns))
    return {
        "checked_at": at.isoformat(),
        "expired": [r.consent_id for r in results],
        "quarantined": quarantined,
        "takedowns": takedowns,
        "results": [r.as_dict() for r in results],
    }
