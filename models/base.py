"""One base class for every model family (face encoders, edit engines, scorers).

Subclasses implement `_load()` (read weights, build sessions) and `_predict()`. Callers use
`load()` — idempotent and thread-safe, so a model shared by concurrent tasks loads once — and
`predict()`, which loads on first use. Nothing is loaded at construction or import time.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from typing import Any

log = logging.getLogger(__name__)


class ModelBase(ABC):
    def __init__(self) -> None:
        self._loaded = False
        self._load_lock = threading.Lock()
        self.load_seconds: float | None = None

    @property
    def loaded(self) -> bool:
        return self._loaded

    def load(self) -> None:
        """Load weights once; later calls (from any thread) return immediately."""
        if self._loaded:
            return
        with self._load_lock:
            if self._loaded:
                return
            start = time.perf_counter()
            self._load()
            self.load_seconds = time.perf_counter() - start
            self._loaded = True
            log.debug("loaded %s in %.2fs", type(self).__name__, self.load_seconds)

    def unload(self) -> None:
        """Drop loaded weights (frees memory); the next `predict()` loads again."""
        with self._load_lock:
            if self._loaded:
                self._unload()
                self._loaded = False

    def predict(self, *args: Any, **kwargs: Any) -> Any:
        self.load()
        return self._predict(*args, **kwargs)

    @abstractmethod
    def _load(self) -> None:
        """Read weights and build whatever `_predict` needs. Raise ModelNotConfiguredError (naming
        the CASTKEEP_ setting) when weights are missing."""

    @abstractmethod
    def _predict(self, *args: Any, **kwargs: Any) -> Any:
        """Run the model; only called after `_load()` succeeded."""

    def _unload(self) -> None:
        """Release what `_load` built. The default forgets nothing; override to free memory."""
