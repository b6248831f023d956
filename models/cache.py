"""One owner for everything castkeep loads once per process: edit engines, face encoders and
signers. Keyed by (kind, name, options); `clear()` drops them (tests, or to free device memory).

Loading real weights takes seconds to minutes, so a worker keeps what it loaded between variants
and requests; building twice (two caches holding one pipeline) would double device memory.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def options_key(options: dict[str, Any] | None) -> str:
    """A stable key for construction options (paths and other values as strings)."""
    return json.dumps(options or {}, sort_keys=True, default=str)


class ModelCache:
    def __init__(self) -> None:
        self._items: dict[tuple[str, str, str], Any] = {}
        self._lock = threading.RLock()

    def get(self, kind: str, name: str, options: dict[str, Any] | None,
            build: Callable[[], T]) -> T:
        """The cached object for (kind, name, options), built by `build()` on first use."""
        key = (kind, name, options_key(options))
        with self._lock:
            item = self._items.get(key)
            if item is None:
                item = build()
                self._items[key] = item
            return item

    def discard(self, kind: str, name: str, options: dict[str, Any] | None) -> None:
        with self._lock:
            self._items.pop((kind, name, options_key(options)), None)

    def clear(self, kind: str | None = None) -> None:
        with self._lock:
            for key in [k for k in self._items if kind is None or k[0] == kind]:
                del self._items[key]

    def __len__(self) -> int:
        return len(self._items)


# The process's cache. Nothing is built at import time.
models = ModelCache()
