from __future__ import annotations

import datetime as dt

from castkeep.tasks.consent_gate import ModelLicence, check_licences, is_commercial, publish_instant

ENGINE_NC = ModelLicence("engine", "some-engine", "1", "CC-BY-NC-4.0", False)
ENCODER_OK = ModelLicence("encoder", "dlib-resnet-v1", "1", "CC0-1.0", True)


def test_non_commercial_model_refused_for_commercial_purposes_only():
    gate = check_licences([ENGINE_NC, ENCODER_OK], "advertising", {},
                          {"some-engine": "CASTKEEP_X__LICENCE_ID"})
    assert not gate.allowed
    (refusal,) = gate.refusals
    assert "engine some-engine 1 is licensed CC-BY-NC-4.0" in refusal
    assert "set CASTKEEP_X__LICENCE_ID" in refusal
    assert check_licences([ENGINE_NC], "editorial", {}).allowed
    assert check_licences([ENGINE_NC], "internal", {}).allowed


def test_configured_licence_id_lifts_the_refusal_and_is_recorded():
    gate = check_licences([ENGINE_NC, ENCODER_OK], "advertising", {"some-engine": "lic-9"})
    assert gate.allowed and gate.licence_ids == {"some-engine": "lic-9"}


def test_commercial_purposes_and_publish_instant():
    assert is_commercial("advertising") and is_commercial("packaging")
    assert not is_commercial("Editorial")
    at = publish_instant(dt.date(2030, 12, 31))
    assert at == dt.datetime(2030, 12, 31, 23, 59, 59, tzinfo=dt.timezone.utc)
