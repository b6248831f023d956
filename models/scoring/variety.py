"""How different the variants of one request look: mean pairwise grey-level difference.

Each image is reduced to grey at a fixed size (256 x 320, width x height, whatever its shape),
so framing, light, colour temperature and backdrop all count, and image size does not.
"""

from __future__ import annotations

from itertools import combinations

import cv2
import numpy as np

COMPARE_SIZE = (256, 320)  # width, height
MIN_MEAN_DIFFERENCE = 8.0  # grey levels (0-255): below this the variants read as one picture


def grey_thumbnail(rgb: np.ndarray, size: tuple[int, int] = COMPARE_SIZE) -> np.ndarray:
    grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA).astype(np.float32)


def mean_pairwise_difference(images: list[np.ndarray]) -> float | None:
    """Mean absolute grey difference over every pair (None for fewer than two images)."""
    if len(images) < 2:
        return None
    thumbs = [grey_thumbnail(im) for im in images]
    return float(np.mean([np.abs(a - b).mean() for a, b in combinations(thumbs, 2)]))
