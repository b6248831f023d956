"""The register's consent states (valid, ending soon, lapsed, not yet valid, revoked) and the
Content Credentials panel's words, without servers."""

from __future__ import annotations

import datetime as dt

import pytest

from castkeep.provenance.consent import ConsentTerms
from castkeep.tasks.page_views_compliance import EXPIRING_DAYS, consent_view

NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.timezone.utc)


def _terms(*, start_days: int = -100, end_days: int = 365, status: str = "active") -> ConsentTerms:
    return ConsentTerms(
        id="c1", talent_id="t1", valid_from=NOW + dt.timedelta(days=start_days),
        valid_until=NOW + dt.timedelta(days=end_days), channels=("web",), territories=("FR",),
        purposes=("advertising",), edits=("lighting",), synthetic_likeness=True,
        ai_training=False, status=status)


@pytest.mark.parametrize(("kwargs", "state", "revocable"), [
    ({}, "valid", True),
    ({"end_days": EXPIRING_DAYS + 1}, "valid", True),
    ({"end_days": EXPIRING_DAYS}, "expiring", True),
    ({"end_days": 3}, "expiring", True),
    ({"end_days": -1}, "lapsed", True),
    ({"start_days": 2}, "not_yet_valid", True),
    ({"status": "revoked"}, "revoked", False),
    ({"status": "expired", "end_days": -5}, "expired", False),
])
def test_consent_states(kwargs, state, revocable):
    view = consent_view(_terms(**kwargs), external_ref="C-1", now=NOW)
    assert view["state"] == state
    assert view["revocable"] is revocable
    assert view["channels"] == ["web"] and view["territories"] == ["FR"]


def test_days_left_counts_down_and_stops_at_zero():
    assert consent_view(_terms(end_days=3), external_ref=None, now=NOW)["days_left"] == 3
    assert consent_view(_terms(end_days=-4), external_ref=None, now=NOW)["days_left"] == 0


def test_credentials_in_words():
    from castkeep.flows.web.pages.assets import credentials

    cc = credentials({
        "state": "Trusted", "failures": [], "has_manifest": True,
        "signer": {"common_name": "Studio signer", "issuer": "Studio CA", "alg": "Es256"},
        "actions": [{"action": "c2pa.edited", "softwareAgent": {"name": "castkeep", "version": "1"},
                     "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/"
                                          "compositeWithTrainedAlgorithmicMedia"}],
        "training_mining": {"cawg.ai_generative_training": "notAllowed",
                            "cawg.data_mining": "allowed"},
    })
    assert cc["signer"]["name"] == "Studio signer"
    assert cc["actions"][0]["action"] == "edited" and cc["actions"][0]["agent"] == "castkeep 1"
    assert cc["source_types"] == ["composite with trained algorithmic media"]
    assert cc["training_mining"] == {"AI generative training": "not allowed",
                                     "data mining": "allowed"}


def test_credentials_of_a_file_without_a_manifest():
    from castkeep.flows.web.pages.assets import credentials

    cc = credentials({"state": None, "failures": ["manifest.missing"], "signer": None,
                      "actions": None, "ingredients": None, "training_mining": None})
    assert cc["state"] == "Invalid" and cc["failures"] == ["manifest.missing"]
    assert cc["actions"] == [] and cc["signer"]["name"] == ""
