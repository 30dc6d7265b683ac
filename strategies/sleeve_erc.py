"""ERC with a momentum equity sleeve as one of its assets (issue 13, part 3).

:class:`SleeveERC` splits its universe into *assets* (ETFs, held directly) and the *sleeve's
stocks* (``sleeve_symbols``), run by a :class:`~regime_trader.strategies.momentum.MomentumSleeve`.
Every day it solves risk budgeting on the EWMA covariance of ``[assets..., sleeve]`` -- the
sleeve's daily return is one more column -- and expands the sleeve's weight into its stocks'
weights (``w_sleeve * holdings``), so the :class:`~regime_trader.strategies.base.Signal` names
every traded symbol, long-only, fully invested once ready.

Risk budgets and risk level (what a risk-tolerance profile sets): ``risk_budgets`` is either a
table mapping an asset symbol, or ``"sleeve"``, to a positive number (the others get 1), or a
list of ``n_assets + 1`` positive numbers in the order ``[assets..., sleeve]`` (as
:class:`~regime_trader.strategies.reference.StaticERC` takes one per symbol); either way it is
normalised, so ``{sleeve = 2}`` gives the sleeve twice the risk of each asset, and none is ERC.
``target_vol`` scales the invested fraction to ``target_vol`` over the forecast volatility on the
same covariance, within ``[min_exposure, max_exposure]``, exactly as ``StaticERC`` does.

Warm-up. The sleeve first invests on the first month start with ``lookback + 1`` closes; its
covariance row starts with the first return it earns, and it joins the ERC after ``min_obs`` of
them. Until then (and whenever the sleeve holds nothing: no positive score) the ERC runs on the
assets alone, from their own EWMA covariance; with no assets the strategy is not ready then. With
no ``sleeve_symbols`` the strategy is plain ERC on every symbol (what a generic caller gets).

Survivorship: see :mod:`regime_trader.strategies.momentum` -- returns on today's index members are
not evidence.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
import pandas as pd

from regime_trader.strategies._checks import (
    at_least,
    check_fields,
    check_positive,
    check_unit_interval,
    checked,
)
from regime_trader.strategies.base import ConfiguredStrategy, Signal, Strategy
from regime_trader.strategies.covariance import EwmaCovariance, regularize
from regime_trader.strategies.momentum import MomentumParams, MomentumSleeve
from regime_trader.strategies.params import record_from_dict, record_to_dict
from regime_trader.strategies.reference import vol_targeted_exposure
from regime_trader.strategies.riskparity import relative_risk_contributions, solve_risk_budget

__all__ = ["SLEEVE", "SleeveERC", "SleeveERCParams", "Widened"]

SLEEVE = "sleeve"
"""The sleeve's name among the ERC's assets (in ``risk_budgets`` and the diagnostics)."""


@dataclass(frozen=True)
class SleeveERCParams:
    """Every parameter of :class:`SleeveERC` (a portfolio's ``strategy_params``).

    Attributes
    ----------
    sleeve_symbols : tuple of str, default ()
        The sleeve's stocks; every other symbol is an asset. Empty: plain ERC.
    momentum : MomentumParams
        The stock-selection rule (nested table ``momentum``).
    risk_budgets : mapping of str to float, or tuple of float, default {}
        Relative risk budget of an asset symbol or ``"sleeve"`` (absent ones get 1), or one per
        ERC asset in the order ``[assets..., sleeve]``.
    cov_halflife : float, default 63
        Half-life in days of the EWMA covariances (as :class:`StaticERC`'s).
    shrinkage : float, default 0.1
        Shrinkage toward the diagonal, in [0, 1].
    min_obs : int, default 60
        Returns a covariance needs before it is used (the sleeve's row: returns it earned).
    target_vol : float, optional
        Annualised volatility target of the invested fraction; None: fully invested.
    min_exposure, max_exposure : float, default 0 and 1
        Floor and cap of that fraction (no leverage).
    """

    sleeve_symbols: tuple[str, ...] = ()
    momentum: MomentumParams = field(default_factory=MomentumParams)
    risk_budgets: Mapping[str, float] | tuple[float, ...] = field(default_factory=dict)
    cov_halflife: float = checked(63.0, check_positive)
    shrinkage: float = checked(0.1, check_unit_interval)
    min_obs: int = checked(60, at_least(2))
    target_vol: float | None = None
    min_exposure: float = 0.0
    max_exposure: float = 1.0

    def __post_init__(self) -> None:
        check_fields(self)
        if len(set(self.sleeve_symbols)) != len(self.sleeve_symbols):
            raise ValueError("sleeve_symbols must be unique")
        if self.target_vol is not None:
            check_positive("target_vol", self.target_vol)
        if not 0.0 <= self.min_exposure <= self.max_exposure <= 1.0:
            raise ValueError(
                f"need 0 <= min_exposure <= max_exposure <= 1, got {self.min_exposure}, "
                f"{self.max_exposure}"
            )
        budgets = self.risk_budgets
        items = budgets.items() if isinstance(budgets, Mapping) else enumerate(budgets)
        for key, value in items:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"risk_budgets.{key} must be a number, got {value!r}")
            check_positive(f"risk_budgets.{key}", float(value))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SleeveERCParams:
        """Read plain data (TOML, JSON, a research trial); absent fields keep their defaults.

        Raises
        ------
        ValueError
            Naming the field, for an unknown key or a value of the wrong type or range.
        """
        rest = dict(data)
        budgets = rest.pop("risk_budgets", {})
        base = record_from_dict(cls, rest)
        if isinstance(budgets, Mapping):
            return dataclasses.replace(base, risk_budgets={str(k): v for k, v in budgets.items()})
        if isinstance(budgets, list | tuple):
            return dataclasses.replace(base, risk_budgets=tuple(budgets))
        raise ValueError(f"risk_budgets must be a table or a list, got {budgets!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON values that :meth:`from_dict` reads back to an equal record."""
        out = record_to_dict(self)
        out["sleeve_symbols"] = list(self.sleeve_symbols)
        budgets = self.risk_budgets
        out["risk_budgets"] = (
            {k: float(v) for k, v in sorted(budgets.items())}
            if isinstance(budgets, Mapping)
            else [float(v) for v in budgets]
        )
        return out


class SleeveERC(ConfiguredStrategy):
    """Risk budgeting over ``[assets..., momentum sleeve]``, the sleeve expanded into stocks.

    Parameters
    ----------
    symbols : sequence of str
        Assets and the sleeve's stocks, in the column order of the bars.
    params : SleeveERCParams, optional
    """

    name = "erc_sleeve"
    params_type = SleeveERCParams

    def __init__(self, symbols: Sequence[str], params: SleeveERCParams | None = None) -> None:
        super().__init__(symbols)
        self.params = params or SleeveERCParams()
        stocks = set(self.params.sleeve_symbols)
        unknown = sorted(stocks - set(self.symbols))
        if unknown:
            raise ValueError(f"sleeve_symbols not in the universe: {unknown[:5]}")
        self._assets = np.array([i for i, s in enumerate(self.symbols) if s not in stocks], int)
        self._stocks = np.array([i for i, s in enumerate(self.symbols) if s in stocks], int)
        self.assets = [self.symbols[i] for i in self._assets]
        self._budgets = _budget_vector(self.params.risk_budgets, [*self.assets, SLEEVE])
        halflife = self.params.cov_halflife
        stock_symbols = [self.symbols[i] for i in self._stocks]
        self.sleeve = MomentumSleeve(stock_symbols, self.params.momentum) if stocks else None
        self._asset_cov = EwmaCovariance(len(self._assets), halflife)
        self._cov = EwmaCovariance(len(self._assets) + 1, halflife)
        self._last_close: np.ndarray | None = None
        self._last_weights: np.ndarray | None = None

    def settings(self) -> dict[str, Any]:
        return self.params.to_dict()

    def _step(self, date: pd.Timestamp, closes: np.ndarray) -> Signal:
        asset_closes = closes[self._assets]
        was_invested = self.sleeve is not None and self.sleeve.invested
        sleeve_return = 0.0
        if self.sleeve is not None:
            sleeve_return = self.sleeve.update(date, closes[self._stocks])
        if self._last_close is not None:
            r = np.log(asset_closes / self._last_close)
            self._asset_cov.update(r)
            # The sleeve's row starts with the first return it earned: zeros before would
            # understate its variance for months (the EWMA remembers them).
            if was_invested or self._cov.n_obs > 0:
                self._cov.update(np.append(r, math.log1p(sleeve_return)))
        self._last_close = asset_closes
        return self._decide(date)

    def _sleeve_in(self) -> bool:
        return (
            self.sleeve is not None
            and self.sleeve.invested
            and self._cov.n_obs >= self.params.min_obs
        )

    def _decide(self, date: pd.Timestamp) -> Signal:
        n_assets = len(self._assets)
        sleeve_in = self._sleeve_in()
        if sleeve_in:
            cov, budgets = self._cov.covariance, self._budgets
        elif n_assets and self._asset_cov.n_obs >= self.params.min_obs:
            cov, budgets = self._asset_cov.covariance, self._budgets[:-1]
        else:
            reason = f"warming up: sleeve {self._cov.n_obs}, assets {self._asset_cov.n_obs} returns"
            return self._signal(
                date, np.zeros(len(self.symbols)), ready=False, diagnostics={"reason": reason}
            )
        cov = regularize(cov, self.params.shrinkage)
        weights, solver = self._solve(cov, budgets)
        rc = relative_risk_contributions(weights, cov)
        exposure, sizing = self._exposure(weights, cov)
        weights = weights * exposure
        names = [*self.assets, SLEEVE] if sleeve_in else self.assets
        full = np.zeros(len(self.symbols))
        full[self._assets] = weights[:n_assets]
        w_sleeve = float(weights[-1]) if sleeve_in else 0.0
        if self.sleeve is not None:
            full[self._stocks] = w_sleeve * self.sleeve.holdings_
        diagnostics = {
            "risk_contributions": dict(zip(names, rc.tolist(), strict=True)),
            "erc_solver": solver,
            **sizing,
            **self._sleeve_diagnostics(w_sleeve, sleeve_in),
        }
        return self._signal(date, full, ready=True, diagnostics=diagnostics)

    def _solve(self, cov: np.ndarray, budgets: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        if cov.shape[0] == 1:
            return np.ones(1), {"converged": True, "n_iter": 0, "max_relative_error": 0.0}
        w0 = self._last_weights
        w0 = w0 if w0 is not None and len(w0) == len(budgets) else None
        # regularize proved cov positive definite (its lowest eigenvalue lifted above 0).
        solved = solve_risk_budget(cov, budgets, w0=w0, assume_positive_definite=True)
        self._last_weights = solved.weights
        return solved.weights, solved.diagnostics()

    def _exposure(self, weights: np.ndarray, cov: np.ndarray) -> tuple[float, dict[str, Any]]:
        """The invested fraction (StaticERC's rule) and why; all of it without a target."""
        p = self.params
        return vol_targeted_exposure(weights, cov, p.target_vol, p.min_exposure, p.max_exposure)

    def _sleeve_diagnostics(self, weight: float, sleeve_in: bool) -> dict[str, Any]:
        if self.sleeve is None:
            return {}
        return {
            "sleeve": {
                "weight": weight,
                "in_erc": sleeve_in,
                "stocks_held": int((self.sleeve.holdings_ > 0).sum()),
                "rebalanced": self.sleeve.rebalanced_,
                "turnover": self.sleeve.turnover_,
            }
        }

    def _state(self) -> dict[str, Any]:
        return {
            "params": self.settings(),
            "sleeve": None if self.sleeve is None else self.sleeve.state_dict(),
            "asset_cov": self._asset_cov.state_dict(),
            "cov": self._cov.state_dict(),
            "last_close": self._last_close,
            "last_weights": self._last_weights,
        }

    def _restore(self, state: dict[str, Any]) -> None:
        if self.sleeve is not None:
            self.sleeve = MomentumSleeve.from_state(
                self.sleeve.symbols, self.params.momentum, state["sleeve"]
            )
        self._asset_cov = EwmaCovariance.from_state(state["asset_cov"])
        self._cov = EwmaCovariance.from_state(state["cov"])
        if state["last_close"] is not None:
            self._last_close = np.asarray(state["last_close"], dtype=float)
        if state["last_weights"] is not None:
            self._last_weights = np.asarray(state["last_weights"], dtype=float)


def _budget_vector(
    budgets: Mapping[str, float] | tuple[float, ...], names: list[str]
) -> np.ndarray:
    """The budget of each ERC asset (``names``: the assets, then the sleeve)."""
    if not isinstance(budgets, Mapping):
        if len(budgets) != len(names):
            raise ValueError(
                f"risk_budgets must be {len(names)} numbers ([assets..., {SLEEVE}]), "
                f"got {len(budgets)}"
            )
        return np.array(budgets, dtype=float)
    extra = sorted(set(budgets) - set(names))
    if extra:
        raise ValueError(f"risk_budgets names {extra}, not an asset or {SLEEVE!r}")
    return np.array([float(budgets.get(n, 1.0)) for n in names])


class Widened(Strategy):
    """A strategy on some of the columns, reporting weight 0 for the others (not saved).

    How a backtest on a universe of assets plus a sleeve's stocks runs the benchmarks on the
    assets alone: the backtest engine wants every signal to name every column.

    Parameters
    ----------
    inner : Strategy
        Fresh, on a subset of ``symbols``.
    symbols : sequence of str
        The whole universe, in the column order of the bars.
    """

    name = "widened"

    def __init__(self, inner: Strategy, symbols: Sequence[str]) -> None:
        super().__init__(symbols)
        self.inner = inner
        self._columns = np.array([self.symbols.index(s) for s in inner.symbols], int)

    def _step(self, date: pd.Timestamp, closes: np.ndarray) -> Signal:
        signal = self.inner._step(date, closes[self._columns])
        self.inner.last_date = date  # what inner.iter_update would have set
        weights = dict.fromkeys(self.symbols, 0.0)
        weights.update(signal.weights)
        return dataclasses.replace(signal, weights=weights)

    def _state(self) -> dict[str, Any]:
        raise NotImplementedError("a backtest adapter: save the inner strategy instead")

    def _restore(self, state: dict[str, Any]) -> None:
        raise NotImplementedError("a backtest adapter: restore the inner strategy instead")

    @classmethod
    def _construct(cls, state: dict[str, Any]) -> Self:
        raise NotImplementedError("a backtest adapter: restore the inner strategy instead")
