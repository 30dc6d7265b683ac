"""Registers the ``reliability`` marker (the fault matrix) until pyproject.toml lists it."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "reliability: fault matrix with real processes (crashes, Redis and broker outages, "
        "bad configuration, replicas, halts)",
    )
