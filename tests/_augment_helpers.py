"""Shared inputs for the augmentation tests (test_augment.py, test_augment_transforms.py)."""

import numpy as np

IMAGES = (6, 8, 8, 2)  # one shape for most tests: each new shape is a new compilation


def normal(shape, seed=0):
    # NumPy inputs: eager jax.random calls would compile one small program per shape.
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)
