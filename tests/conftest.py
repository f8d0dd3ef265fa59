"""Shared fixtures: an explicit PRNG key for every random test."""

import jax
import pytest


@pytest.fixture
def key() -> jax.Array:
    return jax.random.PRNGKey(0)
