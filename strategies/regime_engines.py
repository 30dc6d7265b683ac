"""The regime engines a strategy can hold, behind one interface.

An engine is three parts that must agree: a causal feature recursion over the closes, the
columns of its rows the model sees, and the online tracker that fits and filters them.

- ``"hmm"``: :class:`~regime_trader.strategies.features.FeatureEngine`, the ``hmm_features``
  columns, :class:`~regime_trader.strategies.regime_online.RegimeTracker` (Gaussian HMM,
  forward filter, monthly and drift refits);
- ``"jump"`` and ``"sparse_jump"``:
  :class:`~regime_trader.strategies.jump_features.JumpFeatureEngine`, the ``jump_features``
  columns, :class:`~regime_trader.strategies.jump_online.JumpTracker` (the statistical jump
  model, or its sparse form, with the causal online DP; the scaler is fit on each training
  window only).

:class:`RegimeSource` builds the three from :class:`RegimeERCParams` and the universe, and
saves and restores them, so the strategy never branches on the engine.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from regime_trader.strategies.features import FeatureEngine
from regime_trader.strategies.jump_features import JumpFeatureEngine
from regime_trader.strategies.jump_online import JumpTracker
from regime_trader.strategies.macro_online import MacroEngine, macro_engine, restore_macro_engine
from regime_trader.strategies.paired_recursion import stock_bond_pair
from regime_trader.strategies.regime_erc_params import RegimeERCParams, select_columns
from regime_trader.strategies.regime_online import RegimeTracker
from regime_trader.strategies.regime_window import RegimeUpdate

__all__ = ["RegimeSource"]


@dataclass
class RegimeSource:
    """One engine's feature recursion, the columns its model sees, and its tracker.

    Attributes
    ----------
    features : FeatureEngine or JumpFeatureEngine
    columns : list of int
        Positions in the feature row of the model's inputs.
    tracker : RegimeTracker or JumpTracker
    equity : int
        Position of the equity symbol (its return orders the regimes).
    macro : MacroProxyEngine or MacroSeriesEngine, optional
        The macro signals the model also sees, after the engine's own columns (ETF proxies, or
        the true series the strategy observes beside the closes).
    """

    features: FeatureEngine | JumpFeatureEngine
    columns: list[int]
    tracker: RegimeTracker | JumpTracker
    equity: int
    # The macro signals appended to every feature row (``macro_features``), if any.
    macro: MacroEngine | None = None

    @classmethod
    def fresh(cls, symbols: Sequence[str], params: RegimeERCParams) -> RegimeSource:
        """A source that has seen no bar.

        Raises
        ------
        ValueError
            If ``equity_symbol``/``bond_symbol`` are not symbols, or a feature template
            matches nothing.
        """
        return cls._assemble(symbols, params, None)

    @classmethod
    def restore(
        cls, symbols: Sequence[str], params: RegimeERCParams, state: Mapping[str, Any]
    ) -> RegimeSource:
        """Rebuild from :meth:`state_dict` (``state`` holds ``features`` and ``tracker``; a
        version-1 state the training window's payload as ``returns``)."""
        source = cls._assemble(symbols, params, state)
        if source.tracker.params is not None:  # the payload only ever seeds the first fit
            source.tracker.window.drop_payload()
        return source

    @classmethod
    def _assemble(
        cls, symbols: Sequence[str], params: RegimeERCParams, state: Mapping[str, Any] | None
    ) -> RegimeSource:
        equity, bond = params.equity_symbol, params.bond_symbol
        pair = stock_bond_pair(symbols, equity, bond)
        features: FeatureEngine | JumpFeatureEngine
        tracker: RegimeTracker | JumpTracker
        if params.engine == "hmm":
            templates, field_name = params.hmm_features, "hmm_features"
            if state is None:
                features = FeatureEngine(symbols, params.features, equity=equity, bond=bond)
                tracker = RegimeTracker(params.regime)
            else:
                features = FeatureEngine.from_state(state["features"])
                tracker = RegimeTracker.from_state(state["tracker"], payload=state.get("returns"))
        else:
            templates, field_name = params.jump_features, "jump_features"
            if state is None:
                spec = params.jump_feature_spec
                features = JumpFeatureEngine(symbols, spec, equity=equity, bond=bond)
                tracker = JumpTracker(params.jump, sparse=params.engine == "sparse_jump")
            else:
                features = JumpFeatureEngine.from_state(state["features"])
                tracker = JumpTracker.from_state(state["tracker"], payload=state.get("returns"))
        names = features.names
        chosen = select_columns(templates, names, symbols, pair, field_name)
        if params.engine == "sparse_jump" and params.jump.kappa > math.sqrt(len(chosen)):
            # The fit would refuse it on the first training window, months into a run.
            raise ValueError(
                f"jump.kappa={params.jump.kappa} exceeds sqrt(n_features)="
                f"{math.sqrt(len(chosen)):.4g} for the {len(chosen)} jump_features chosen"
            )
        columns = [names.index(c) for c in chosen]
        macro = None
        if params.macro_features:
            macro = (
                macro_engine(params.macro_source, symbols, params.macro_features, params.macro_spec)
                if state is None
                else restore_macro_engine(state["macro"])
            )
            columns += [len(names) + i for i in range(len(macro.signals))]
        return cls(features, columns, tracker, 0 if pair is None else pair[0], macro)

    def feature_row(self, closes: np.ndarray) -> np.ndarray:
        """The day's whole feature row: the engine's features, then the macro signals."""
        row = self.features.update(closes)
        return row if self.macro is None else np.concatenate([row, self.macro.update(closes)])

    @property
    def ready(self) -> bool:
        """Every input of the model is defined (the features' and the macro's warm-ups)."""
        return self.features.ready and (self.macro is None or self.macro.ready)

    @property
    def min_train_obs(self) -> int:
        return self.tracker.settings.min_train_obs

    def update(self, date: pd.Timestamp, row: np.ndarray, returns: np.ndarray) -> RegimeUpdate:
        """Feed the day's model inputs to the tracker.

        Until the first fit the asset returns ride in the training window as payload (the
        strategy seeds its per-regime covariances from them, then drops them: see
        :meth:`seeded`).
        """
        equity_return = float(returns[self.equity])
        payload = returns if self.tracker.params is None else None
        return self.tracker.update(date, row[self.columns], equity_return, payload=payload)

    def seeded(self) -> None:
        """The first fit's payload has been used: the window forgets it."""
        self.tracker.window.drop_payload()

    def diagnostics(self) -> dict[str, Any]:
        """The engine's own signs of health: HMM drift, or whether the jump fit found stress."""
        if isinstance(self.tracker, RegimeTracker):
            return {"drift_score": self.tracker.drift.score}
        return {"stress_separated": self.tracker.separated}

    def state_dict(self) -> dict[str, Any]:
        """The feature recursion's and the tracker's states (JSON values and arrays)."""
        state = {"features": self.features.state_dict(), "tracker": self.tracker.state_dict()}
        if self.macro is not None:  # without macro signals the state is as it always was
            state["macro"] = self.macro.state_dict()
        return state
