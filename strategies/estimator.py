"""What the regime models share as estimators: states, seeded starts, the occupancy floor.

Both :class:`~regime_trader.strategies.regime.RegimeModel` (Gaussian HMM) and
:class:`~regime_trader.strategies.jump.JumpModel` follow skfolio's contract -- parameters in
``__init__``, fitted state ending in ``_`` -- and share these parameters and their checks, and
their fitted parameters share what a strategy reads from a transition matrix.
"""

from __future__ import annotations

import numpy as np

from regime_trader.strategies._checks import check_at_least, check_n_states
from regime_trader.strategies.base import expected_durations

__all__ = ["SeededStatesModel", "Transitions"]


class SeededStatesModel:
    """The parameters every regime model has, checked at construction.

    Parameters
    ----------
    n_states : int
        Number of regimes, 2 to 4.
    n_init : int
        Seeded starts of a cold fit, >= 1.
    min_occupancy : float
        A start whose least used state holds less than this share of the training window is
        discarded, in [0, 1 / n_states).
    random_state : int
        Seed of the first start; the others use the following integers.

    Raises
    ------
    ValueError
        Naming the parameter and the value.
    """

    def __init__(
        self, n_states: int, *, n_init: int, min_occupancy: float, random_state: int
    ) -> None:
        check_n_states(n_states)
        check_at_least("n_init", n_init, 1)
        if not 0 <= min_occupancy < 1.0 / n_states:
            raise ValueError(f"min_occupancy must be in [0, 1/n_states), got {min_occupancy}")
        self.n_states = n_states
        self.n_init = n_init
        self.min_occupancy = min_occupancy
        self.random_state = random_state


class Transitions:
    """For fitted parameters holding a row-stochastic ``transmat`` (n_states, n_states)."""

    transmat: np.ndarray

    @property
    def n_states(self) -> int:
        return int(self.transmat.shape[0])

    @property
    def expected_durations(self) -> np.ndarray:
        """Expected days spent in each state once entered: 1 / (1 - A_kk)."""
        return expected_durations(self.transmat)
