import numpy as np

from castkeep.models.scoring.variety import grey_thumbnail, mean_pairwise_difference


def test_identical_images_do_not_differ_and_shifted_ones_do():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (64, 48, 3), dtype=np.uint8)
    assert mean_pairwise_difference([img, img.copy()]) == 0.0
    assert mean_pairwise_difference([img]) is None
    brighter = np.clip(img.astype(int) + 20, 0, 255).astype(np.uint8)
    assert 10.0 < mean_pairwise_difference([img, brighter]) <= 20.0


def test_compared_at_a_fixed_size_whatever_the_shape():
    assert grey_thumbnail(np.zeros((1000, 300, 3), np.uint8)).shape == (320, 256)
    big = np.full((900, 700, 3), 100, np.uint8)
    small = np.full((90, 70, 3), 110, np.uint8)
    assert mean_pairwise_difference([big, small]) == 10.0
