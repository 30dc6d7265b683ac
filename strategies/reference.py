"""Reference strategies: the benchmarks every backtest reports next to the regime strategy.

- :class:`StaticERC` — equal risk contribution on the same EWMA covariance as the regime
  strategy, always fully invested, no regimes: what the regime layer must beat;
- :class:`EqualWeight` — 1/N, rebalanced daily;
- :class:`SixtyForty` — 60% first asset, 40% second, rebalanced daily;
- :class:`BuyHold` — everything in the first asset.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import pandas as pd

from regime_trader.strategies.base import Signal, Strategy
from regime_trader.strategies.covariance import EwmaCovariance, regularize
from regime_trader.strategies.riskparity import relative_risk_contributions, solve_risk_budget

__all__ = ["BuyHold", "EqualWeight", "SixtyForty", "StaticERC"]


class _FixedWeights(Strategy):
    """A constant target; subclasses define :meth:`_target`."""

    def _target(self) -> np.ndarray:
        raise NotImplementedError

    def _step(self, date: pd.Timestamp, closes: np.ndarray) -> Signal:
        return self._signal(date, self._target(), ready=True)

    def _state(self) -> dict[str, Any]:
        return {}

    def _restore(self, state: dict[str, Any]) -> None:
        return None

    @classmethod
    def _construct(cls, state: dict[str, Any]) -> Self:
        return cls(state["symbols"])


class EqualWeight(_FixedWeights):
    """1/N in every asset."""

    name = "equal_weight"

    def _target(self) -> np.ndarray:
        n = len(self.symbols)
        return np.full(n, 1.0 / n)


class SixtyForty(_FixedWeights):
    """60% in the first asset (equity), 40% in the second (bonds)."""

    name = "sixty_forty"

    def __init__(self, symbols: Sequence[str]) -> None:
        super().__init__(symbols)
        if len(self.symbols) < 2:
            raise ValueError(f"sixty_forty needs at least two symbols, got {self.symbols}")

    def _target(self) -> np.ndarray:
        w = np.zeros(len(self.symbols))
        w[:2] = (0.6, 0.4)
        return w


class BuyHold(_FixedWeights):
    """Everything in the first asset."""

    name = "buy_hold"

    def _target(self) -> np.ndarray:
        w = np.zeros(len(self.symbols))
        w[0] = 1.0
        return w


class StaticERC(Strategy):
    """Equal risk contribution on an EWMA covariance, fully invested.

    Parameters
    ----------
    symbols : sequence of str
    cov_halflife : float, default 63
        Half-life in days of the EWMA covariance (the same as the regime strategy's).
    shrinkage : float, default 0.1
        Shrinkage toward the diagonal (see :func:`regime_trader.strategies.covariance.regularize`).
    min_obs : int, default 60
        Returns needed before the covariance is trusted; until then ``ready`` is False.
    """

    name = "erc_static"

    def __init__(
        self,
        symbols: Sequence[str],
        *,
        cov_halflife: float = 63.0,
        shrinkage: float = 0.1,
        min_obs: int = 60,
    ) -> None:
        super().__init__(symbols)
        if min_obs < 2:
            raise ValueError(f"min_obs must be >= 2, got {min_obs}")
        self.cov_halflife = cov_halflife
        self.shrinkage = shrinkage
        self.min_obs = min_obs
        self._cov = EwmaCovariance(len(self.symbols), cov_halflife)
        self._last_close: np.ndarray | None = None
        self._last_weights: np.ndarray | None = None

    def _step(self, date: pd.Timestamp, closes: np.ndarray) -> Signal:
        if self._last_close is not None:
            self._cov.update(np.log(closes / self._last_close))
        self._last_close = closes
        if self._cov.n_obs < self.min_obs:
            return self._signal(
                date,
                np.zeros(len(self.symbols)),
                ready=False,
                diagnostics={"reason": f"warming up: {self._cov.n_obs} of {self.min_obs} returns"},
            )
        cov = regularize(self._cov.covariance, self.shrinkage)
        solved = solve_risk_budget(cov, w0=self._last_weights)
        weights = solved.weights
        self._last_weights = weights
        rc = relative_risk_contributions(weights, cov)
        return self._signal(
            date,
            weights,
            ready=True,
            diagnostics={
                "risk_contributions": dict(zip(self.symbols, rc.tolist(), strict=True)),
                "erc_solver": solved.diagnostics(),
            },
        )

    def _state(self) -> dict[str, Any]:
        return {
            "params": {
                "cov_halflife": self.cov_halflife,
                "shrinkage": self.shrinkage,
                "min_obs": self.min_obs,
            },
            "cov": self._cov.state_dict(),
            "last_close": None if self._last_close is None else self._last_close.tolist(),
            "last_weights": None if self._last_weights is None else self._last_weights.tolist(),
        }

    @classmethod
    def _construct(cls, state: dict[str, Any]) -> Self:
        return cls(state["symbols"], **state["params"])

    def _restore(self, state: dict[str, Any]) -> None:
        self._cov = EwmaCovariance.from_state(state["cov"])
        if state["last_close"] is not None:
            self._last_close = np.asarray(state["last_close"], dtype=float)
        if state["last_weights"] is not None:
            self._last_weights = np.asarray(state["last_weights"], dtype=float)
