"""Range checks shared by every parameter record of the strategies, with one message style.

Each check raises :class:`ValueError` naming the field and quoting the value, e.g.
``shrinkage must be in [0, 1], got 1.5``, so a bad entry in a portfolio's TOML or a research
trial is found by its name. A NaN fails every check (comparisons with NaN are false).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

__all__ = [
    "at_least",
    "check_at_least",
    "check_choice",
    "check_fields",
    "check_fraction",
    "check_n_states",
    "check_non_negative",
    "check_positive",
    "check_unit_interval",
    "checked",
]

_T = TypeVar("_T")
_CHECK = "regime_trader.check"


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


def at_least(low: int) -> Callable[[str, int], None]:
    """:func:`check_at_least` with the bound ``low``, as a check for :func:`checked`."""

    def check(name: str, value: int) -> None:
        check_at_least(name, value, low)

    return check


def checked(default: _T, check: Callable[[str, _T], None]) -> _T:
    """A dataclass field with ``default`` whose value :func:`check_fields` passes to ``check``.

    The check stands beside the field it guards instead of in a ``__post_init__`` that names
    the field again; ``check`` is called as ``check(name, value)``, like the checks above.
    """
    return dataclasses.field(default=default, metadata={_CHECK: check})


def check_fields(record: Any) -> None:
    """Run the check of every :func:`checked` field of the dataclass ``record``, in field order.

    Raises
    ------
    ValueError
        From the first check that fails, naming the field and quoting its value.
    """
    for f in dataclasses.fields(record):
        check = f.metadata.get(_CHECK)
        if check is not None:
            check(f.name, getattr(record, f.name))
