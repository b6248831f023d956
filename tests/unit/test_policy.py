"""Consent policy: every failing clause is named; validity refuses everything."""

from __future__ import annotations

import datetime as dt

from castkeep.provenance.consent import ConsentTerms
from castkeep.provenance.policy import Use, evaluate

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 6, 1, tzinfo=UTC)


def terms(**kw) -> ConsentTerms:
    base = dict(
        id="c-42", talent_id="t-1",
        valid_from=dt.datetime(2025, 1, 1, tzinfo=UTC), valid_until=dt.datetime(2027, 1, 1, tzinfo=UTC),
        channels=("social", "web"), territories=("DE", "FR"), purposes=("advertising",),
        edits=("camera", "lighting"), synthetic_likeness=False, ai_training=False, status="active",
    )
    base.update(kw)
    return ConsentTerms(**base)


def test_covered_use_is_allowed():
    d = evaluate(terms(), Use("web", "fr", "advertising", ("lighting",)), NOW)
    assert d.allowed and d.reasons == [] and bool(d)


def test_territory_clause_message():
    d = evaluate(terms(), Use("web", "JP", "advertising"), NOW)
    assert not d.allowed
    assert d.reasons == ["territory JP not in consent c-42 scope [DE, FR]"]


def test_every_failing_clause_listed():
    use = Use("print", "JP", "editorial", ("lighting", "wardrobe", "expression"), synthetic_likeness=True,
              ai_training=True)
    d = evaluate(terms(), use, NOW)
    assert d.reasons == [
        "channel print not in consent c-42 scope [social, web]",
        "territory JP not in consent c-42 scope [DE, FR]",
        "purpose editorial not in consent c-42 scope [advertising]",
        "edit wardrobe not allowed by consent c-42 (allowed edits [camera, lighting])",
        "edit expression not allowed by consent c-42 (allowed edits [camera, lighting])",
        "synthetic likeness needed but not granted by consent c-42",
        "AI training needed but not granted by consent c-42",
    ]


def test_world_covers_any_territory():
    assert evaluate(terms(territories=("WORLD",)), Use("web", "JP", "advertising"), NOW).allowed


def test_synthetic_likeness_granted():
    use = Use("web", "DE", "advertising", synthetic_likeness=True)
    assert evaluate(terms(synthetic_likeness=True), use, NOW).allowed
    assert not evaluate(terms(), use, NOW).allowed


def test_revoked_refuses_an_otherwise_covered_use():
    d = evaluate(terms(status="revoked"), Use("web", "FR", "advertising"), NOW)
    assert not d.allowed and d.reasons == ["consent c-42 is revoked"]


def test_expired_by_date_and_by_status():
    use = Use("web", "FR", "advertising")
    later = dt.datetime(2027, 1, 2, tzinfo=UTC)
    d = evaluate(terms(), use, later)
    assert not d.allowed and d.reasons[0].startswith("consent c-42 expired on 2027-01-01")
    d2 = evaluate(terms(status="expired"), use, NOW)
    assert not d2.allowed and "expired" in d2.reasons[0]


def test_not_yet_valid_and_naive_time_is_utc():
    use = Use("web", "FR", "advertising")
    d = evaluate(terms(), use, dt.datetime(2024, 12, 31, 23, 0))
    assert not d.allowed and d.reasons[0].startswith("consent c-42 is not valid until 2025-01-01")
    # Boundaries are inclusive.
    assert evaluate(terms(), use, dt.datetime(2025, 1, 1, tzinfo=UTC)).allowed
    assert evaluate(terms(), use, dt.datetime(2027, 1, 1, tzinfo=UTC)).allowed


def test_expired_still_lists_scope_clauses():
    d = evaluate(terms(status="revoked"), Use("web", "JP", "advertising"), NOW)
    assert d.reasons == ["consent c-42 is revoked", "territory JP not in consent c-42 scope [DE, FR]"]
