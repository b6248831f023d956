"""tasks/identify.py helpers that need no catalogue: the weakest consent wins, and a candidate
file is refused (one clear line) when it is not a regular, reasonably sized file."""

from __future__ import annotations

import pytest
from castkeep.tasks import identify

from castkeep.errors import UnsupportedImageError


@pytest.mark.parametrize(("states", "expected"), [
    (["active"], "active"),
    (["active", "expired"], "expired"),
    (["expired", "revoked", "active"], "revoked"),
    ([], None),
])
def test_overall_consent_status_is_the_weakest(states, expected):
    assert identify.overall_consent_status([{"status": s} for s in states]) == expected


def test_read_candidate_reads_a_file(tmp_path):
    path = tmp_path / "x.jpg"
    path.write_bytes(b"\xff\xd8data")
    assert identify.read_candidate(path) == b"\xff\xd8data"


def test_read_candidate_refuses_directories_missing_and_oversized(tmp_path, monkeypatch):
    with pytest.raises(UnsupportedImageError, match="is not a file"):
        identify.read_candidate(tmp_path)
    with pytest.raises(UnsupportedImageError, match="is not a file"):
        identify.read_candidate(tmp_path / "missing.jpg")
    big = tmp_path / "big.jpg"
    big.write_bytes(b"0" * 2048)
    monkeypatch.setattr(identify, "MAX_FILE_BYTES", 1024)
    with pytest.raises(UnsupportedImageError, match="identify takes an image file"):
        identify.read_candidate(big)


def test_not_found_result_has_every_field():
    out = identify.Identification(asset_id=None, method=None, confidence=0.0, status=None)
    assert not out.found
    assert set(out.as_dict()) >= {"asset_id", "method", "confidence", "status", "talents",
                                  "consent_status"}
