"""Shared test configuration."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from shared_data import extract_cifar_jpgs

# Hypothesis profiles of the property tests (tests/test_properties.py). "ci", the default (and
# what CI gets: CI=true), is derandomised: the same examples on every run, no example database,
# so the suite never passes or fails by luck. "explore" (HYPOTHESIS_PROFILE=explore) draws many
# new random examples to find new cases; what it finds becomes a pinned @example.
# No deadline in either: a wall-clock limit fails on a busy machine, not on a wrong answer.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True, deadline=None,
                          max_examples=100, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("explore", derandomize=False, print_blob=True, deadline=None,
                          max_examples=2000, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def cifar_small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 real CIFAR-10 JPEGs per class per split (an ImageFolder tree)."""
    return extract_cifar_jpgs(tmp_path_factory.mktemp("cifar_small"), per_class=30)
