"""castkeep's flows: Prefect flows whose plain JSON parameters are stored as they are.

Prefect serialises every flow run's parameters with FastAPI's `jsonable_encoder`, and importing
FastAPI for that costs about 0.13 s on each flow command (`audit`, `consent revoke`, `request`,
`ingest`) on a 2-core machine. castkeep's flows take ids, numbers, flags and lists of them,
which are already what that encoder returns; anything else (a datetime, a model) still goes
through Prefect's own encoder, so the stored parameters are the same either way.

    @flow(name="audit", log_prints=False)     # from castkeep.flows.flow_type, not prefect
    def audit(...): ...
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect.flows import Flow

__all__ = ["CastkeepFlow", "flow", "json_native"]


def json_native(value: Any) -> bool:
    """True when `value` is JSON as it stands: str, int, float, bool, None, or lists and
    string-keyed dicts of those (tuples count: Prefect's encoder stores them as lists)."""
    if value is None or type(value) in (str, int, float, bool):
        return True
    if type(value) in (list, tuple):
        return all(json_native(v) for v in value)
    if type(value) is dict:
        return all(type(k) is str and json_native(v) for k, v in value.items())
    return False


def _plain(value: Any) -> Any:
    if type(value) in (list, tuple):
        return [_plain(v) for v in value]
    if type(value) is dict:
        return {k: _plain(v) for k, v in value.items()}
    return value


class CastkeepFlow(Flow):
    """A Prefect flow that stores JSON-native parameters without loading FastAPI."""

    def serialize_parameters(self, parameters: dict[str, Any]) -> dict[str, Any]:
        others = {k: v for k, v in parameters.items() if not json_native(v)}
        encoded = super().serialize_parameters(others) if others else {}
        return {k: encoded[k] if k in others else _plain(v)
                for k, v in parameters.items() if k not in others or k in encoded}


def flow(**options: Any) -> Callable[[Callable[..., Any]], CastkeepFlow]:
    """`prefect.flow(**options)` for castkeep's flows (keyword options only)."""
    return lambda fn: CastkeepFlow(fn, **options)
