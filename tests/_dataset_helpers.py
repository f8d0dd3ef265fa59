"""Checks shared by the dataset tests (test_datasets, test_digits, test_mnist1d, test_mnist)."""

from __future__ import annotations

import urllib.request

import numpy as np
import pytest


def forbid_network_and_user_cache(monkeypatch: pytest.MonkeyPatch, folder) -> None:
    """No test may touch the network or the user's cache folder."""

    def no_network(*args, **kwargs):
        raise AssertionError(f"a test tried to open a URL: {args!r}")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setenv("DLCOURSE_CACHE", str(folder))


def rows(x: np.ndarray) -> list[bytes]:
    return [row.tobytes() for row in x.reshape(len(x), -1)]


def affine_inverse(standardized: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """Map ``standardized`` back to ``raw``'s scale, assuming it is ``(raw - m) / s``.

    The fit uses only moments, so it is exact when the rows are a permutation of a
    standardized ``raw`` and leaves a visible residual otherwise.
    """
    s = raw.std(dtype=np.float64) / standardized.std(dtype=np.float64)
    m = raw.mean(dtype=np.float64) - s * standardized.mean(dtype=np.float64)
    return standardized.astype(np.float64) * s + m


def sorted_rows(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    flat = x.reshape(len(x), -1)
    order = np.lexsort(flat.T[::-1])
    return flat[order], y[order]


def assert_stratified(y_part: np.ndarray, y_all: np.ndarray, fraction: float) -> None:
    """Each class holds its share of the part, to within one example."""
    part = np.bincount(y_part, minlength=10)
    whole = np.bincount(y_all, minlength=10)
    np.testing.assert_array_less(np.abs(part - fraction * whole), 1.0 + 1e-9)
