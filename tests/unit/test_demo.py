from __future__ import annotations

import datetime as dt

from castkeep.flows.demo import demo_requests, ensure_keys, samples_dir
from castkeep.flows.settings import Settings
from castkeep.models.request_spec import request_from_mapping


def test_demo_requests_are_valid_and_one_is_out_of_scope():
    docs = dict(demo_requests(dt.date(2026, 1, 1)))
    specs = {k: request_from_mapping(v) for k, v in docs.items()}
    assert specs["single"].talents == ("demo-talent-a",)
    assert specs["group"].is_group and specs["group"].engine == "classical"
    assert specs["refused"].territory == "JP"
    assert all(s.publish_date == dt.date(2026, 1, 15) for s in specs.values())
    assert (samples_dir() / "demo-talent-a.consent.yaml").is_file()


def test_keys_are_created_once(tmp_path):
    s = Settings(home=tmp_path)
    assert ensure_keys(s) == "created"
    assert ensure_keys(s) == "existing"
    configured = Settings(home=tmp_path, signing={"cert_chain": tmp_path / "c", "private_key": tmp_path / "k"})
    assert ensure_keys(configured) == "configured"
