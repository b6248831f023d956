"""The variant scorer (models/scoring/variant.py) as a Prefect task."""

from __future__ import annotations

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE

from castkeep.models.scoring.variant import VariantScores, jsonable, score_variant

__all__ = ["VariantScores", "jsonable", "score_task", "score_variant"]


@task(name="score", cache_policy=NO_CACHE, persist_result=False)
def score_task(rgb: np.ndarray, **kwargs) -> VariantScores:
    return score_variant(rgb, **kwargs)
