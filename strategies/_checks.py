"""Range checks shared by every parameter record of the strategies, with one message style.

Each check raises :class:`ValueError` naming the field and quoting the value, e.g.
``shrinkage must be in [0, 1], got 1.5``, so a bad entry in a portfolio's TOML or a research
trial is found by its name. A NaN fails every check (comparisons with NaN are false).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

__all__ = [
    "check_at_least",
    "check_choice",
    "check_fraction",
    "check_n_states",
    "check_non_negative",
    "check_positive",
    "check_unit_interval",
]


def check_positive(name: str, value: float) -> None:
    """``value`` is finite and > 0."""
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be finite and > 0, got {value}")


def check_non_negative(name: str, value: float) -> None:
    """``value`` is finite and >= 0."""
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be finite and >= 0, got {value}")


def check_unit_interval(name: str, value: float) -> None:
    """``value`` is in the closed interval [0, 1]."""
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")


def check_fraction(name: str, value: float) -> None:
    """``value`` is in the half-open interval (0, 1] (a smoothing gain, a share)."""
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{name} must be in (0, 1], got {value}")


def check_at_least(name: str, value: int, low: int) -> None:
    """``value`` is an integer >= ``low`` (a bool is not an integer here)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def check_n_states(n_states: int) -> None:
    """A regime model has 2 to 4 states (the labels of :func:`regime_labels`)."""
    if not 2 <= n_states <= 4:
        raise ValueError(f"n_states must be between 2 and 4, got {n_states}")


def check_choice(name: str, value: str, choices: Iterable[str]) -> None:
    """``value`` is one of ``choices``."""
    known: Sequence[str] = tuple(choices)
    if value not in known:
        raise ValueError(f"{name} must be one of {list(known)}, got {value!r}")
