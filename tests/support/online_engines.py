"""Checks shared by the tests of the online feature engines (strategies.features, jump_features)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from regime_trader.strategies.state import json_tree


class OnlineEngine(Protocol):
    """An engine fed one row of closes at a time, whose state can be saved."""

    def update(self, closes: np.ndarray) -> np.ndarray: ...

    def state_dict(self) -> dict[str, Any]: ...


def assert_json_restored_engine_continues(
    engine: OnlineEngine,
    from_state: Callable[[dict[str, Any]], OnlineEngine],
    values: np.ndarray,
    saved_after: int,
    until: int,
) -> None:
    """Feed ``engine`` the first ``saved_after`` rows, restore a copy from its state sent through
    JSON, then check that both give the same bits on the rows up to ``until``."""
    for row in values[:saved_after]:
        engine.update(row)
    restored = from_state(json.loads(json.dumps(json_tree(engine.state_dict()))))
    for row in values[saved_after:until]:
        np.testing.assert_array_equal(engine.update(row), restored.update(row))
