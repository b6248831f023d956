"""models/cache.py: one keyed, clearable owner for loaded things."""

from __future__ import annotations

import threading

from castkeep.models.cache import ModelCache


def test_builds_once_per_key_and_clears_by_kind():
    cache, built = ModelCache(), []

    def build(tag):
        built.append(tag)
        return object()

    a = cache.get("engine", "classical", {"x": 1}, lambda: build("a"))
    assert cache.get("engine", "classical", {"x": 1}, lambda: build("again")) is a
    b = cache.get("engine", "classical", {"x": 2}, lambda: build("b"))
    s = cache.get("signer", "c2pa", None, lambda: build("s"))
    assert b is not a and built == ["a", "b", "s"] and len(cache) == 3
    cache.clear("engine")
    assert len(cache) == 1 and cache.get("signer", "c2pa", None, lambda: build("s2")) is s
    cache.clear()
    assert len(cache) == 0


def test_concurrent_first_use_builds_one():
    cache, built, barrier = ModelCache(), [], threading.Barrier(8)

    def worker():
        barrier.wait()
        cache.get("encoder", "dlib", {}, lambda: built.append(1) or object())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert built == [1]


def test_the_process_cache_owns_engines_encoders_and_pipelines():
    """No module keeps its own dict or lru_cache of loaded models next to the ModelCache."""
    import re
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    offenders = []
    for folder in ("models", "tasks", "flows", "provenance"):
        for path in repo.glob(f"{folder}/**/*.py"):
            text = path.read_text()
            if re.search(r"^_(ENGINES|CACHE|SIGNERS|PIPELINES)\b.*=", text, re.M) or (
                "lru_cache" in text and re.search(r"get_encoder|get_engine|make_signer", text)
            ):
                offenders.append(path.relative_to(repo).as_posix())
    assert offenders == []
