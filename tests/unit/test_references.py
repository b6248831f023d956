from __future__ import annotations

import pytest

from castkeep.errors import SpecError
from castkeep.tasks.consent_gate import TalentClearance
from castkeep.tasks.references import quality_rank, select_references


def test_quality_rank_prefers_big_sharp_frontal_faces():
    base = {"face_px": 200, "sharpness": 150.0, "yaw": 0.0, "roll": 0.0}
    assert quality_rank(base) > quality_rank({**base, "face_px": 100})
    assert quality_rank(base) > quality_rank({**base, "sharpness": 20.0})
    assert quality_rank(base) > quality_rank({**base, "yaw": 30.0})
    assert quality_rank(base) > quality_rank({**base, "roll": 20.0})
    assert quality_rank({}) == 0.0


def test_more_talents_than_the_engine_composes_is_a_spec_error():
    clear = [TalentClearance(ref=f"t{i}", talent_id=f"{i:032x}", consents=()) for i in range(3)]
    with pytest.raises(SpecError, match="at most 2 people and the request names 3"):
        select_references(None, None, None, clear, 2, "some-engine")
