"""A placement and a revocation of the consent it relies on, run concurrently on the real
catalogue with the interleaving forced both ways by a third connection holding the asset's row
lock: either the placement commits first and the revocation opens a takedown for it, or the
revocation commits first and the placement is refused. Never a deadlock, never a live placement
without a takedown."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.integration.test_publish_race import Worker, _wait_for_waiters

pytestmark = pytest.mark.usefixtures("prefect_harness")

URL = "https://shop.example.com/race"


def _hold_asset(rt, asset_id):
    conn = rt.engine.connect()
    tx = conn.begin()
    conn.execute(text("SELECT id FROM asset WHERE id = :id FOR UPDATE"), {"id": asset_id})
    return conn, tx


def _publish(cat):
    from castkeep.tasks.placements import publish

    return lambda: publish(cat.runtime, asset_id=str(cat.assets["a_obama"]), channel="web",
                           url=URL, actor="placer")


def _revoke(cat):
    from castkeep.tasks.revoke import revoke

    return lambda: revoke(cat.runtime, consent_id=str(cat.consents["obama"]), reason="withdrawn",
                          face=None, actor="officer")


def test_placement_first_then_revocation_opens_its_takedown(compliance_catalogue):
    cat = compliance_catalogue(untracked=False)
    conn, tx = _hold_asset(cat.runtime, cat.assets["a_obama"])
    try:
        placing = Worker(_publish(cat))
        placing.start()  # takes the consent FOR SHARE, then waits for the asset
        _wait_for_waiters(cat.runtime, 1)
        revoking = Worker(_revoke(cat))
        revoking.start()  # waits for the consent (FOR UPDATE)
        _wait_for_waiters(cat.runtime, 2)
    finally:
        tx.rollback()
        conn.close()
    placing.join(30)
    revoking.join(30)
    assert placing.error is None and revoking.error is None, (placing.error, revoking.error)
    assert placing.result["recorded"] is True
    assert [(t["url"], t["asset_id"]) for t in revoking.result.takedowns] == [
        (URL, str(cat.assets["a_obama"]))]
    assert cat.status("a_obama") == "quarantined"


def test_revocation_first_then_placement_is_refused(compliance_catalogue):
    from castkeep.errors import WithdrawnError
    from castkeep.tasks.placements import asset_placements

    cat = compliance_catalogue(untracked=False)
    conn, tx = _hold_asset(cat.runtime, cat.assets["a_obama"])
    try:
        revoking = Worker(_revoke(cat))
        revoking.start()  # takes the consent FOR UPDATE, then waits to quarantine the asset
        _wait_for_waiters(cat.runtime, 1)
        placing = Worker(_publish(cat))
        placing.start()  # waits for the consent (FOR SHARE)
        _wait_for_waiters(cat.runtime, 2)
    finally:
        tx.rollback()
        conn.close()
    revoking.join(30)
    placing.join(30)
    assert revoking.error is None, revoking.error
    assert isinstance(placing.error, WithdrawnError), placing.error
    assert revoking.result.takedowns == []
    assert asset_placements(cat.runtime, str(cat.assets["a_obama"])) == []
