"""Black-Litterman with regime views: a tracking-error-bounded tilt away from a benchmark.

An alternative allocator to the regime ERC for a universe of similar assets (the factor ETFs
of the dynamic factor allocation literature: Shu and Mulvey 2025, benchmark EW(7)). Every bar,
on exactly the regime machinery of :class:`~regime_trader.strategies.regime_erc.RegimeERC`
(it is a subclass: the same feature recursion, regime tracker, EWMA and per-regime moments,
updated by the same code; only the decision differs):

1. the covariance S is the regime strategy's (the EWMA, or its GARCH variant, blended with the
   regime mixture by ``regimes.regime_blend``, shrunk by ``regimes.shrinkage``);
2. the forecast of tomorrow's returns is the predicted mixture of the per-regime means,
   ``m = sum_k q_k m_k`` with q the *predicted* regime distribution (the filtered one times the
   transition matrix: causal, never a smoother) and ``m_k`` the per-regime EWMA means of
   :class:`~regime_trader.strategies.covariance.RegimeCovariance`;
3. the views are each asset's expected active return over the benchmark, ``Q_i = m_i - w_b^T m``,
   blended with the equilibrium ``pi = delta S w_b`` into the Black-Litterman posterior, and the
   portfolio maximises the posterior mean-variance utility long-only and fully invested with
   an ex-ante tracking error of at most ``te_target``
   (:mod:`~regime_trader.strategies.black_litterman`).

With no information in the views (``view_confidence = 0``, or views equal to the equilibrium's)
the portfolio is the benchmark. Until the regime engine's first fit the signal is not ready and
holds cash, as the regime strategy's. The regime strategy's exposure policy is not used (the
portfolio is always fully invested); its rebalancing band is (off by default).

The defaults are priors, not fits: delta = 2.5 and tau = 0.05 are He and Litterman's (1999),
confidence 1 their Omega = diag(P tau S P^T), a 3% tracking-error budget the literature's
order of magnitude for a factor tilt, and the benchmark equal weight (EW(7) on the factor ETFs).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from regime_trader.strategies._checks import check_positive
from regime_trader.strategies.base import Signal, regime_labels
from regime_trader.strategies.black_litterman import black_litterman
from regime_trader.strategies.params import PlainRecord
from regime_trader.strategies.regime_erc import RegimeERC
from regime_trader.strategies.regime_erc_params import RegimeERCParams
from regime_trader.strategies.regime_window import RegimeUpdate

__all__ = ["BlackLittermanParams", "BlackLittermanRegime"]

PERIODS_PER_YEAR = 252.0


@dataclass(frozen=True)
class BlackLittermanParams(PlainRecord):
    """Every knob of :class:`BlackLittermanRegime`, with its default.

    A portfolio's TOML sets them as ``strategy_params`` of ``strategy = "bl_regime"``, the
    regime machinery in the nested table ``[strategy_params.regimes]`` (any field of
    :class:`~regime_trader.strategies.regime_erc_params.RegimeERCParams`; its ``policy`` is
    not used).

    Parameters
    ----------
    risk_aversion : float, default 2.5
        delta: of the equilibrium ``pi = delta S w_b`` and of the portfolio's utility.
    tau : float, default 0.05
        Uncertainty of the prior mean, ``tau S``.
    view_confidence : float >= 0, default 1.0
        c in ``Omega = diag(P tau S P^T) / c``: 1 weighs each view as the prior, 0 ignores the
        views (the portfolio is the benchmark).
    te_target : float, default 0.03
        Bound on the ex-ante tracking error against the benchmark, annualised (x sqrt(252) of
        the daily); 0 holds the benchmark.
    benchmark_weights : tuple of float or None, default None
        The benchmark, one non-negative weight per symbol summing to 1; None is equal weight.
    regimes : RegimeERCParams
        The regime engine, its features, the covariance and the rebalancing band.
    """

    risk_aversion: float = 2.5
    tau: float = 0.05
    view_confidence: float = 1.0
    te_target: float = 0.03
    benchmark_weights: tuple[float, ...] | None = None
    regimes: RegimeERCParams = field(default_factory=RegimeERCParams)

    def __post_init__(self) -> None:
        check_positive("risk_aversion", self.risk_aversion)
        check_positive("tau", self.tau)
        for name in ("view_confidence", "te_target"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        if self.benchmark_weights is not None:
            w = self.benchmark_weights
            if min(w, default=-1.0) < 0 or not math.isclose(sum(w), 1.0, abs_tol=1e-9):
                raise ValueError(
                    f"benchmark_weights must be >= 0 and sum to 1, got {list(w)} (sum {sum(w)})"
                )


class BlackLittermanRegime(RegimeERC):
    """Black-Litterman on regime-conditional active-return views, TE-bounded, long-only.

    Parameters
    ----------
    symbols : sequence of str
    params : BlackLittermanParams, optional
    """

    name = "bl_regime"
    has_regimes = True
    params_type = BlackLittermanParams

    def __init__(self, symbols: Sequence[str], params: BlackLittermanParams | None = None) -> None:
        self.bl_params = params or BlackLittermanParams()
        super().__init__(symbols, self.bl_params.regimes)
        n = len(self.symbols)
        given = self.bl_params.benchmark_weights
        if given is not None and len(given) != n:
            raise ValueError(f"benchmark_weights has {len(given)} values for {n} symbols")
        self.benchmark = np.full(n, 1.0 / n) if given is None else np.asarray(given, dtype=float)

    def _decide(self, date: pd.Timestamp, update: RegimeUpdate) -> Signal:
        # RegimeERC._decision calls this only with a fitted model's update.
        assert update.filtered is not None and update.predicted is not None  # nosec B101
        regimes = self.params
        means, _ = self._regime_cov.moments()
        cov = self._forecast_covariance(update.predicted)
        forecast = update.predicted @ means
        p = self.bl_params
        result = black_litterman(
            cov,
            self.benchmark,
            forecast,
            risk_aversion=p.risk_aversion,
            tau=p.tau,
            confidence=p.view_confidence,
            te_max=p.te_target / math.sqrt(PERIODS_PER_YEAR),
        )
        weights = regimes.rebalance.apply(self._previous, result.weights)
        fitted = self._source.tracker.params
        assert fitted is not None  # nosec B101 - RegimeERC._decision passes fitted updates only
        labels = regime_labels(fitted.n_states)
        diagnostics: dict[str, Any] = {
            **result.diagnostics(self.symbols, PERIODS_PER_YEAR),
            "forecast_returns": dict(
                zip(self.symbols, (forecast * PERIODS_PER_YEAR).tolist(), strict=True)
            ),
            "active_weights": dict(
                zip(self.symbols, (result.weights - self.benchmark).tolist(), strict=True)
            ),
            # Euler variance contributions w_i (S w)_i, read by strategies.risk_attribution.
            "risk_variance": {"forecast": (weights * (cov @ weights)).tolist()},
            "regime_obs": dict(zip(labels, self._regime_cov.weights.tolist(), strict=True)),
        }
        return self._regime_signal(date, update, weights, diagnostics)

    def settings(self) -> dict[str, Any]:
        return self.bl_params.to_dict()

    @classmethod
    def _saved_params(cls, saved: Mapping[str, Any]) -> Mapping[str, Any]:
        return saved  # newer than RegimeERC's optional persistence multiplier: as saved
