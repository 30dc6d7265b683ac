"""The default strategy: regime-aware equal risk contribution.

Every bar:

1. the regime engine's feature recursion (:mod:`regime_trader.strategies.regime_engines`) turns
   the closes into causal features;
2. its tracker filters the regime probabilities: the Gaussian HMM's forward filter (refitting
   monthly or on drift) or the jump model's online DP (refitting monthly);
3. the EWMA covariance and the per-regime covariances are updated; tomorrow's covariance is
   the blend of the EWMA and the regime mixture under the predicted regime distribution,
   regularised to be positive definite (with ``covariance = "garch"`` or ``"gjr"`` the EWMA's
   variances are replaced by per-asset GARCH forecasts, :mod:`~regime_trader.strategies.garch`);
4. :func:`~regime_trader.strategies.riskparity.solve_risk_budget` solves the ERC weights on it (its
   ``converged``, ``n_iter`` and error go to the signal's ``diagnostics["erc_solver"]``);
5. :class:`~regime_trader.strategies.allocation.AllocationPolicy` decides the invested fraction,
   the rest is cash (every component of that decision is on the signal's diagnostics);
6. :class:`~regime_trader.strategies.rebalance.RebalanceBand` keeps what the previous decision
   held where the new one differs by less than its bands (off by default), so the signal is
   what the strategy would trade.

Until the engine's first fit (``min_train_obs`` feature rows) the signal is not ``ready`` and
holds cash.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from regime_trader.strategies.allocation import VolatilityHistory
from regime_trader.strategies.base import ConfiguredStrategy, Signal, regime_labels
from regime_trader.strategies.covariance import (
    EwmaCovariance,
    RegimeCovariance,
    blend_covariance,
    mixture_covariance,
    regularize,
)
from regime_trader.strategies.garch import GarchCovariance
from regime_trader.strategies.macro import MACRO_COLUMNS
from regime_trader.strategies.macro_online import MacroSeriesEngine
from regime_trader.strategies.regime_engines import RegimeSource
from regime_trader.strategies.regime_erc_params import RegimeERCParams
from regime_trader.strategies.regime_window import RegimeUpdate
from regime_trader.strategies.riskparity import relative_risk_contributions, solve_risk_budget

__all__ = ["RegimeERC", "RegimeERCParams"]


class RegimeERC(ConfiguredStrategy):
    """Regime-aware equal risk contribution with exposure sizing.

    Parameters
    ----------
    symbols : sequence of str
        The universe. ``params.equity_symbol`` (default the first) orders the regimes,
        ``params.bond_symbol`` (default the second) is the bond of the stock-bond correlation.
    params : RegimeERCParams, optional
    """

    name = "regime_erc"
    has_regimes = True
    params_type: ClassVar[type[Any]] = RegimeERCParams

    def __init__(self, symbols: Sequence[str], params: RegimeERCParams | None = None) -> None:
        super().__init__(symbols)
        self.params = params or RegimeERCParams()
        n = len(self.symbols)
        if self.params.risk_budgets is not None and len(self.params.risk_budgets) != n:
            raise ValueError(
                f"risk_budgets has {len(self.params.risk_budgets)} values for {n} symbols"
            )
        self._source = RegimeSource.fresh(self.symbols, self.params)
        self._ewma = EwmaCovariance(n, self.params.cov_halflife)
        # With covariance "garch"/"gjr" the EWMA keeps giving the correlations.
        self._garch = (
            None
            if self.params.covariance == "ewma"
            else GarchCovariance(n, self.params.covariance, self.params.garch)
        )
        self._regime_cov = RegimeCovariance(
            self.params.n_states, n, self.params.regime_cov_halflife
        )
        self._vol_history = VolatilityHistory(self.params.policy.vol_median_days)
        self._last_erc: np.ndarray | None = None
        self._smoothed_stress: float | None = None
        self._previous = np.zeros(n)  # the last signal's weights: the band's reference

    @property
    def extra_inputs(self) -> tuple[str, ...]:
        """The true macro series' columns with ``macro_source = "series"``, else none."""
        return MACRO_COLUMNS if isinstance(self._source.macro, MacroSeriesEngine) else ()

    def _observe(self, values: np.ndarray) -> None:
        assert isinstance(self._source.macro, MacroSeriesEngine)  # nosec B101 - extra_inputs
        self._source.macro.observe(values)

    def _step(self, date: pd.Timestamp, closes: np.ndarray) -> Signal:
        signal = self._decision(date, closes)
        self._previous = np.array([signal.weights[s] for s in self.symbols])
        return signal

    def _decision(self, date: pd.Timestamp, closes: np.ndarray) -> Signal:
        features = self._source.features
        row = self._source.feature_row(closes)
        ret = features.returns
        if not np.all(np.isfinite(ret)):  # the very first bar has no return
            return self._not_ready(date, "warming up: first bar")
        self._ewma.update(ret)
        if self._garch is not None:
            self._garch.update(date, ret)
        if not self._source.ready:
            return self._not_ready(date, f"warming up features: {features.n_bars} bars")
        # The asset returns ride in the tracker's training window, aligned with its rows, to
        # seed the per-regime covariances when the first fit labels that window.
        update = self._source.update(date, row, ret)
        if update.filtered is None or update.predicted is None:
            reason = update.refit_error or (
                f"warming up regimes: {len(self._source.tracker.window)} of "
                f"{self._source.min_train_obs} observations"
            )
            return self._not_ready(date, reason)
        if update.refit == "initial" and update.window_filtered is not None:
            # Seed each regime's covariance with the whole first training window.
            returns = self._source.tracker.window.payload()
            for r, p in zip(returns, update.window_filtered, strict=True):
                self._regime_cov.update(r, p)
            self._source.seeded()
        else:
            self._regime_cov.update(ret, update.filtered)
        return self._decide(date, update)

    def _decide(self, date: pd.Timestamp, update: RegimeUpdate) -> Signal:
        # _decision calls this only with a fitted model's update; these only narrow the types.
        assert update.filtered is not None and update.predicted is not None  # nosec B101
        fitted = self._source.tracker.params
        assert fitted is not None  # nosec B101
        cov = self._forecast_covariance(update.predicted)
        budgets = None if self.params.risk_budgets is None else np.asarray(self.params.risk_budgets)
        # regularize proved cov positive definite (its lowest eigenvalue lifted above 0).
        solved = solve_risk_budget(cov, budgets, w0=self._last_erc, assume_positive_definite=True)
        erc = solved.weights
        self._last_erc = erc
        policy = self.params.policy
        vol_median = self._vol_history.push(policy.forecast_vol(erc, cov))
        alloc = policy.allocate(
            erc, cov, update.predicted, fitted.transmat, self._smoothed_stress, vol_median
        )
        self._smoothed_stress = alloc.smoothed_stress
        weights = self.params.rebalance.apply(self._previous, alloc.weights)
        labels = regime_labels(fitted.n_states)
        rc = relative_risk_contributions(erc, cov)
        diagnostics: dict[str, Any] = {
            **alloc.diagnostics(),
            "decided_exposure": float(weights.sum()),
            "risk_contributions": dict(zip(self.symbols, rc.tolist(), strict=True)),
            # Euler variance contributions w_i (S w)_i of the target weights (symbol order) on
            # the forecast S and on each regime's own, shrunk as the forecast is (shrinkage is
            # linear in S: no second regularize); strategies.risk_attribution reads them.
            "risk_variance": {
                "forecast": (weights * (cov @ weights)).tolist(),
                "regimes": {
                    label: (
                        (1.0 - self.params.shrinkage) * weights * (c @ weights)
                        + self.params.shrinkage * weights**2 * np.diag(c)
                    ).tolist()
                    for label, c in zip(labels, self._regime_cov.moments()[1], strict=True)
                },
                "regime_obs": dict(zip(labels, self._regime_cov.weights.tolist(), strict=True)),
            },
            "erc_solver": solved.diagnostics(),
        }
        return self._regime_signal(date, update, weights, diagnostics)

    def _forecast_covariance(self, predicted: np.ndarray) -> np.ndarray:
        """Tomorrow's covariance: the base blended with the predicted regimes' mixture, shrunk
        (positive definite: regularize lifts its lowest eigenvalue above 0)."""
        mixture = None
        if self.params.regime_blend > 0:  # at 0 the blend is the EWMA whatever the mixture
            means, covs = self._regime_cov.moments()
            mixture = mixture_covariance(predicted, means, covs)
        return regularize(
            blend_covariance(self._base_covariance(), mixture, self.params.regime_blend),
            self.params.shrinkage,
        )

    def _regime_signal(
        self,
        date: pd.Timestamp,
        update: RegimeUpdate,
        weights: np.ndarray,
        diagnostics: dict[str, Any],
    ) -> Signal:
        """The ready signal of ``weights``, with the regime and what every regime signal
        reports (engine, covariance, predictions, fits) beside the allocator's ``diagnostics``."""
        fitted = self._source.tracker.params
        assert fitted is not None and update.filtered is not None  # nosec B101 - a fitted update
        assert update.predicted is not None  # nosec B101
        regime = int(np.argmax(update.filtered))
        common: dict[str, Any] = {
            "engine": self.params.engine,
            **self._covariance_diagnostics(),
            "predicted_probs": update.predicted.tolist(),
            "expected_durations": fitted.expected_durations.tolist(),
            "n_fits": self._source.tracker.n_fits,
            **self._source.diagnostics(),
        }
        if update.refit:
            common["refit"] = self._source.tracker.last_fit_report
        if update.refit_error:
            common["refit_error"] = update.refit_error
        return self._signal(
            date,
            weights,
            ready=True,
            regime=regime,
            regime_label=regime_labels(fitted.n_states)[regime],
            regime_probs=tuple(float(p) for p in update.filtered),
            diagnostics={**common, **diagnostics},
        )

    def _base_covariance(self) -> np.ndarray:
        """Tomorrow's covariance before the regime blend: the EWMA, or its correlations with
        the GARCH variances (the EWMA's own variance for an asset not fitted yet)."""
        ewma = self._ewma.covariance
        return ewma if self._garch is None else self._garch.covariance(ewma)

    def _covariance_diagnostics(self) -> dict[str, Any]:
        """``{"covariance": ...}`` (the GARCH fits, fallbacks and errors); nothing for EWMA."""
        if self._garch is None:
            return {}
        return {"covariance": self._garch.diagnostics(self.symbols)}

    def _not_ready(self, date: pd.Timestamp, reason: str) -> Signal:
        return self._signal(
            date, np.zeros(len(self.symbols)), ready=False, diagnostics={"reason": reason}
        )

    def settings(self) -> dict[str, Any]:
        return self.params.to_dict()

    def _state(self) -> dict[str, Any]:
        return {
            "params": self.settings(),
            **self._source.state_dict(),
            "ewma": self._ewma.state_dict(),
            # Only with a GARCH covariance: an EWMA strategy's state is as it always was.
            **({} if self._garch is None else {"garch": self._garch.state_dict()}),
            "regime_cov": self._regime_cov.state_dict(),
            "last_erc": self._last_erc,
            "smoothed_stress": self._smoothed_stress,
            "vol_history": self._vol_history.state_dict(),
            "previous": self._previous,
        }

    @classmethod
    def _saved_params(cls, saved: Mapping[str, Any]) -> Mapping[str, Any]:
        policy = dict(saved.get("policy", {}))
        # A state saved before the persistence multiplier became optional was computed with it
        # applied (it was then the only behaviour): it continues as it was saved.
        policy.setdefault("persistence_multiplier", True)
        return {**saved, "policy": policy}

    def _restore(self, state: dict[str, Any]) -> None:
        self._source = RegimeSource.restore(self.symbols, self.params, state)
        self._ewma = EwmaCovariance.from_state(state["ewma"])
        if self._garch is not None:
            self._garch = GarchCovariance.from_state(state["garch"])
        self._regime_cov = RegimeCovariance.from_state(state["regime_cov"])
        if state["last_erc"] is not None:
            self._last_erc = np.asarray(state["last_erc"], dtype=float)
        self._smoothed_stress = state["smoothed_stress"]
        self._vol_history.load(state.get("vol_history", []))
        if state.get("previous") is not None:
            self._previous = np.asarray(state["previous"], dtype=float)
