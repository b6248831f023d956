"""castkeep.flows.flow_type: castkeep's flows store the same parameters as Prefect's own encoder,
without it for plain JSON values."""

from __future__ import annotations

import datetime as dt
import importlib
import uuid
from pathlib import Path

import pytest
from prefect.flows import Flow
from pydantic import BaseModel

from castkeep.flows.flow_type import CastkeepFlow, flow, json_native


class _Spec(BaseModel):
    name: str
    at: dt.datetime


def _fn(**kwargs):  # the parameters are passed to serialize_parameters directly
    return kwargs


@pytest.mark.parametrize("value, native", [
    ("id", True), (3, True), (2.5, True), (True, True), (None, True),
    (["a", 1, [None, 2.0]], True), (("a", "b"), True), ({"k": {"n": [1]}}, True),
    ({1: "int key"}, False), ([dt.date(2026, 1, 1)], False), (uuid.uuid4(), False),
    (Path("/tmp/x"), False), ({"a": object()}, False),
])
def test_json_native(value, native):
    assert json_native(value) is native


def test_parameters_match_prefects_encoder_in_order():
    at = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.timezone.utc)
    params = {
        "talent": "demo-talent-a", "expiring_within_days": 30, "out_dir": None,
        "inventory": False, "pair": ("a", "b"), "nested": {"ids": ["x", "y"], "n": 1.5},
        "at": at, "spec": _Spec(name="s", at=at), "run": uuid.UUID(int=7), "path": Path("/tmp/p"),
    }
    ours = CastkeepFlow(_fn, name="t").serialize_parameters(params)
    prefects = Flow(_fn, name="t").serialize_parameters(params)
    assert ours == prefects
    assert list(ours) == list(prefects) == list(params)
    assert ours["pair"] == ["a", "b"] and ours["at"] == at.isoformat()


def test_plain_values_are_copied_not_shared():
    ids = ["a", "b"]
    stored = CastkeepFlow(_fn, name="t").serialize_parameters({"ids": ids})
    ids.append("c")
    assert stored == {"ids": ["a", "b"]}


def test_decorator_keeps_prefects_options():
    @flow(name="castkeep-test-flow", persist_result=False, log_prints=False)
    def work(x: int) -> int:
        """Docstring kept."""
        return x

    assert isinstance(work, CastkeepFlow) and isinstance(work, Flow)
    assert work.name == "castkeep-test-flow" and work.persist_result is False
    assert work.__doc__ == "Docstring kept."
    assert work.fn(4) == 4


@pytest.mark.parametrize("module, name", [
    ("castkeep.flows.audit", "audit"), ("castkeep.flows.revoke", "revoke_consent"),
    ("castkeep.flows.revoke", "expire_consents"), ("castkeep.flows.approve", "approve_request"),
    ("castkeep.flows.ingest_references", "ingest_references"),
    ("castkeep.flows.fulfil_request", "fulfil_request"),
    ("castkeep.flows.fulfil_request", "fulfil_variant"),
])
def test_castkeep_flows_use_it(module, name):
    assert isinstance(getattr(importlib.import_module(module), name), CastkeepFlow)
