"""Reference strategies: the benchmarks every backtest reports next to the regime strategy.

- :class:`StaticERC` — equal risk contribution on the same EWMA covariance as the regime
  strategy, fully invested, no regimes: what the regime layer must beat (optionally with risk
  budgets and a volatility target, which a risk-tolerance profile sets:
  :mod:`regime_trader.strategies.risk_tolerance`);
- :class:`InverseVolatility` — weights proportional to 1 / sigma_i on that covariance;
- :class:`EqualWeight` — 1/N, rebalanced daily;
- :class:`EqualWeightQuarterly` — 1/N on the first session of every calendar quarter, drifting
  with prices in between (the "EW(7)" benchmark of the factor-allocation literature);
- :class:`SixtyForty` — 60% equity, 40% bonds, rebalanced daily;
- :class:`BuyHold` — everything in the equity asset.

The equity and bond assets are the first two symbols unless named (``equity``, ``bond``).
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np
import pandas as pd

from regime_trader.strategies._checks import check_at_least
from regime_trader.strategies.allocation import TRADING_DAYS_PER_YEAR
from regime_trader.strategies.base import Signal, Strategy
from regime_trader.strategies.covariance import EwmaCovariance, regularize
from regime_trader.strategies.paired_recursion import pair_symbols, stock_bond_pair
from regime_trader.strategies.riskparity import relative_risk_contributions, solve_risk_budget

__all__ = [
    "BuyHold",
    "EqualWeight",
    "EqualWeightQuarterly",
    "InverseVolatility",
    "SixtyForty",
    "StaticERC",
    "vol_targeted_exposure",
]


class _FixedWeights(Strategy):
    """A constant target; subclasses define :meth:`_target`."""

    @abstractmethod
    def _target(self) -> np.ndarray:
        """The weights of every bar, shape (n_assets,)."""

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


class _EquityBond(_FixedWeights):
    """A fixed mix of the equity and the bond asset (the first two symbols by default)."""

    def __init__(
        self, symbols: Sequence[str], *, equity: str | None = None, bond: str | None = None
    ) -> None:
        super().__init__(symbols)
        self.pair = stock_bond_pair(self.symbols, equity, bond)

    def settings(self) -> dict[str, Any]:
        return {"pair": None if self.pair is None else list(self.pair)}

    def _state(self) -> dict[str, Any]:
        return self.settings()

    @classmethod
    def _construct(cls, state: dict[str, Any]) -> Self:
        equity, bond = pair_symbols(state["symbols"], state.get("pair"))
        return cls(state["symbols"], equity=equity, bond=bond)

    @classmethod
    def from_params(cls, symbols: Sequence[str], params: Mapping[str, Any]) -> Self:
        known = {"equity_symbol", "bond_symbol"}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f"strategy {cls.name!r} takes only {sorted(known)}, got {unknown}")
        return cls(symbols, equity=params.get("equity_symbol"), bond=params.get("bond_symbol"))


class SixtyForty(_EquityBond):
    """60% in the equity asset, 40% in the bond asset."""

    name = "sixty_forty"

    def __init__(
        self, symbols: Sequence[str], *, equity: str | None = None, bond: str | None = None
    ) -> None:
        super().__init__(symbols, equity=equity, bond=bond)
        if self.pair is None:
            raise ValueError(f"sixty_forty needs at least two symbols, got {self.symbols}")

    def _target(self) -> np.ndarray:
        assert self.pair is not None  # nosec B101 - checked at construction
        w = np.zeros(len(self.symbols))
        w[list(self.pair)] = (0.6, 0.4)
        return w


class BuyHold(_EquityBond):
    """Everything in the equity asset."""

    name = "buy_hold"

    def _target(self) -> np.ndarray:
        w = np.zeros(len(self.symbols))
        w[0 if self.pair is None else self.pair[0]] = 1.0
        return w


class EqualWeightQuarterly(Strategy):
    """1/N on the first session of each calendar quarter; between them the weights drift.

    The decision of a day inside a quarter is the previous one grown by the day's price
    relatives, so executing it trades nothing (to floating-point rounding): turnover happens at
    the quarterly rebalances only, as a buy-and-hold of 1/N restarted every quarter.
    """

    name = "equal_weight_quarterly"

    def __init__(self, symbols: Sequence[str]) -> None:
        super().__init__(symbols)
        self._weights: np.ndarray | None = None
        self._last_close: np.ndarray | None = None

    def _step(self, date: pd.Timestamp, closes: np.ndarray) -> Signal:
        previous = self.last_date
        if self._weights is None or previous is None or _quarter(previous) != _quarter(date):
            weights = np.full(len(self.symbols), 1.0 / len(self.symbols))
        else:
            assert self._last_close is not None  # nosec B101 - set with the weights
            grown = self._weights * (closes / self._last_close)
            weights = grown / grown.sum()
        self._weights, self._last_close = weights, closes
        return self._signal(date, weights, ready=True)

    def _state(self) -> dict[str, Any]:
        return {
            "weights": self._weights,
            "last_close": self._last_close,
        }

    @classmethod
    def _construct(cls, state: dict[str, Any]) -> Self:
        return cls(state["symbols"])

    def _restore(self, state: dict[str, Any]) -> None:
        if state["weights"] is not None:
            self._weights = np.asarray(state["weights"], dtype=float)
            self._last_close = np.asarray(state["last_close"], dtype=float)


def vol_targeted_exposure(
    weights: np.ndarray,
    cov: np.ndarray,
    target_vol: float | None,
    min_exposure: float = 0.0,
    max_exposure: float = 1.0,
) -> tuple[float, dict[str, Any]]:
    """The invested fraction of fully invested ``weights`` that aims at ``target_vol`` a year
    on the daily ``cov``, clipped to ``[min_exposure, max_exposure]``, and why (all of it, and
    nothing to say, without a target)."""
    if target_vol is None:
        return 1.0, {}
    forecast = math.sqrt(float(weights @ cov @ weights) * TRADING_DAYS_PER_YEAR)
    wanted = target_vol / forecast if forecast > 0 else max_exposure
    exposure = min(max(wanted, min_exposure), max_exposure)
    return exposure, {"forecast_vol": forecast, "target_vol": target_vol}


def _quarter(date: pd.Timestamp) -> tuple[int, int]:
    return date.year, (date.month - 1) // 3


class _EwmaRisk(Strategy):
    """Fully invested weights from the EWMA covariance of log returns; subclasses weigh.

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

    def __init__(
        self,
        symbols: Sequence[str],
        *,
        cov_halflife: float = 63.0,
        shrinkage: float = 0.1,
        min_obs: int = 60,
    ) -> None:
        super().__init__(symbols)
        check_at_least("min_obs", min_obs, 2)
        self.cov_halflife = cov_halflife
        self.shrinkage = shrinkage
        self.min_obs = min_obs
        self._cov = EwmaCovariance(len(self.symbols), cov_halflife)
        self._last_close: np.ndarray | None = None
        self._last_weights: np.ndarray | None = None

    @abstractmethod
    def _weigh(self, cov: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        """Weights summing to 1 on the regularised covariance, and their diagnostics."""

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
        weights, extra = self._weigh(cov)
        self._last_weights = weights
        rc = relative_risk_contributions(weights, cov)
        diagnostics = {"risk_contributions": dict(zip(self.symbols, rc.tolist(), strict=True))}
        exposure, sizing = self._exposure(weights, cov)
        return self._signal(
            date, weights * exposure, ready=True, diagnostics={**diagnostics, **extra, **sizing}
        )

    def _exposure(self, weights: np.ndarray, cov: np.ndarray) -> tuple[float, dict[str, Any]]:
        """The invested fraction of the weights (the rest is cash), and why: all by default."""
        return 1.0, {}

    def settings(self) -> dict[str, Any]:
        return {
            "cov_halflife": self.cov_halflife,
            "shrinkage": self.shrinkage,
            "min_obs": self.min_obs,
        }

    def _state(self) -> dict[str, Any]:
        return {
            "params": self.settings(),
            "cov": self._cov.state_dict(),
            "last_close": self._last_close,
            "last_weights": self._last_weights,
        }

    @classmethod
    def _construct(cls, state: dict[str, Any]) -> Self:
        return cls(state["symbols"], **state["params"])

    @classmethod
    def from_params(cls, symbols: Sequence[str], params: Mapping[str, Any]) -> Self:
        return cls(symbols, **dict(params))  # an unknown keyword is a TypeError naming it

    def _restore(self, state: dict[str, Any]) -> None:
        self._cov = EwmaCovariance.from_state(state["cov"])
        if state["last_close"] is not None:
            self._last_close = np.asarray(state["last_close"], dtype=float)
        if state["last_weights"] is not None:
            self._last_weights = np.asarray(state["last_weights"], dtype=float)


class StaticERC(_EwmaRisk):
    """Equal risk contribution on an EWMA covariance (see :class:`_EwmaRisk`).

    With the defaults it is fully invested with equal risk budgets: the benchmark. A
    risk-tolerance profile may set the extra parameters.

    Parameters
    ----------
    symbols, cov_halflife, shrinkage, min_obs
        As :class:`_EwmaRisk`.
    risk_budgets : sequence of float, optional
        Risk budget per asset, positive, in the order of ``symbols`` (normalised to sum 1);
        equal when None.
    target_vol : float, optional
        Annualised volatility target: the invested fraction is ``target_vol`` over the
        portfolio's forecast volatility on the same covariance, clipped to
        ``[min_exposure, max_exposure]``, the rest cash. None: fully invested.
    min_exposure, max_exposure : float, default 0 and 1
        Floor and cap of that fraction (no leverage: the cap is at most 1).
    """

    name = "erc_static"

    def __init__(
        self,
        symbols: Sequence[str],
        *,
        risk_budgets: Sequence[float] | None = None,
        target_vol: float | None = None,
        min_exposure: float = 0.0,
        max_exposure: float = 1.0,
        **ewma: Any,
    ) -> None:
        super().__init__(symbols, **ewma)
        if risk_budgets is not None and (
            len(risk_budgets) != len(self.symbols) or not all(b > 0 for b in risk_budgets)
        ):
            raise ValueError(
                f"risk_budgets must be {len(self.symbols)} positive numbers, got {risk_budgets}"
            )
        if target_vol is not None and not target_vol > 0:
            raise ValueError(f"target_vol must be positive, got {target_vol}")
        if not 0.0 <= min_exposure <= max_exposure <= 1.0:
            raise ValueError(
                f"need 0 <= min_exposure <= max_exposure <= 1, got {min_exposure}, {max_exposure}"
            )
        self.risk_budgets = None if risk_budgets is None else tuple(float(b) for b in risk_budgets)
        self.target_vol = target_vol
        self.min_exposure = min_exposure
        self.max_exposure = max_exposure

    def _weigh(self, cov: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        # regularize proved cov positive definite (its lowest eigenvalue lifted above 0).
        solved = solve_risk_budget(
            cov, self.risk_budgets, w0=self._last_weights, assume_positive_definite=True
        )
        return solved.weights, {"erc_solver": solved.diagnostics()}

    def _exposure(self, weights: np.ndarray, cov: np.ndarray) -> tuple[float, dict[str, Any]]:
        return vol_targeted_exposure(
            weights, cov, self.target_vol, self.min_exposure, self.max_exposure
        )

    def settings(self) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if self.risk_budgets is not None:
            extra["risk_budgets"] = list(self.risk_budgets)
        if self.target_vol is not None:  # the defaults leave the saved layout as it was
            extra |= {
                "target_vol": self.target_vol,
                "min_exposure": self.min_exposure,
                "max_exposure": self.max_exposure,
            }
        return {**super().settings(), **extra}


class InverseVolatility(_EwmaRisk):
    """Weights proportional to 1 / sigma_i on the EWMA covariance (see :class:`_EwmaRisk`)."""

    name = "inverse_vol"

    def _weigh(self, cov: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        inverse = 1.0 / np.sqrt(np.diag(cov))
        return inverse / inverse.sum(), {}
