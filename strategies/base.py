"""The strategy interface shared by the backtest and the live cycle.

A :class:`Strategy` consumes daily closes it has not seen yet, one bar at a time, and returns
a :class:`Signal` for the last bar: target weights (long-only, summing with cash to 1), the
regime estimate and diagnostics. It never sees a bar after the one it decides on, so causality
holds by construction; the tests check it anyway.

Persistence never uses pickle: :meth:`Strategy.save_state` returns a
:class:`~regime_trader.strategies.state.StrategyState` (a small JSON header and float arrays,
stored as ``.npy`` bytes), :meth:`Strategy.state_dict` the same as one JSON document (floats
survive JSON exactly through their shortest repr), and ``from_state`` rebuilds from either a
strategy that gives exactly the same next signal as one that never stopped.

Contract of every strategy: its weights do not change when one symbol's whole price history is
multiplied by a constant. Adjusted prices of the same sessions fetched on two dates differ by
such a constant per symbol (the splits and dividends in between), and the live cycle keeps a
restored strategy on the scale it started on (``regime_trader.service.bar_history``), so a live
strategy matches a backtest on the adjusted file only under this contract. Use returns, ratios of
closes or differences of log closes, never price levels;
``tests/unit/strategies/test_scale_invariance`` checks every registered strategy.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from regime_trader.strategies.state import StrategyState, json_tree

__all__ = [
    "BarsError",
    "ConfiguredStrategy",
    "Signal",
    "Strategy",
    "expected_durations",
    "regime_labels",
]

STATE_VERSION = 2
"""Layout of the state tree: 2 keeps the training window as its ring (``window``) with the
payload inside; 1 had ``X``/``equity`` lists oldest first and the payload as ``returns``."""
READABLE_VERSIONS = (1, 2)


class BarsError(ValueError):
    """The bars given to a strategy cannot be used (columns, order, values)."""


def regime_labels(n_states: int) -> tuple[str, ...]:
    """Names of the states, calmest first."""
    return {
        2: ("calm", "stress"),
        3: ("calm", "normal", "stress"),
        4: ("calm", "normal", "elevated", "stress"),
    }[n_states]


def expected_durations(transmat: np.ndarray) -> np.ndarray:
    """Expected days spent in each state once entered, ``1 / (1 - A_kk)``.

    Parameters
    ----------
    transmat : ndarray of shape (n_states, n_states)
        Row-stochastic transition matrix (an HMM's, or a jump path's empirical one).

    Returns
    -------
    ndarray of shape (n_states,)
        Finite: a self-transition of 1 is clipped to ``1 - 1e-12``.
    """
    stay = np.clip(np.diag(transmat), 0.0, 1.0 - 1e-12)
    return np.asarray(1.0 / (1.0 - stay))


@dataclass(frozen=True)
class Signal:
    """A strategy's decision at the close of ``date``.

    Attributes
    ----------
    date : Timestamp
        The last bar the decision used.
    weights : dict of str to float
        Target weight of each symbol, each >= 0.
    cash : float
        1 - sum(weights), >= 0.
    ready : bool
        False while the strategy is still warming up; a live service must not trade then.
    regime : int or None
        The most probable filtered state (0 = calmest).
    regime_label : str or None
    regime_probs : tuple of float or None
        Filtered P(state_t | bars up to date).
    diagnostics : dict
        JSON-serialisable reasons: exposure, forecast volatility, risk contributions, refits.
    """

    date: pd.Timestamp
    weights: dict[str, float]
    cash: float
    ready: bool
    regime: int | None = None
    regime_label: str | None = None
    regime_probs: tuple[float, ...] | None = None
    diagnostics: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        total = sum(self.weights.values()) + self.cash
        if min(self.weights.values(), default=0.0) < -1e-12 or self.cash < -1e-9:
            raise ValueError(f"weights and cash must be non-negative: {self.weights}, {self.cash}")
        if not math.isclose(total, 1.0, abs_tol=1e-9):
            raise ValueError(f"weights + cash must sum to 1, got {total}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (used by alerts, history and /status)."""
        return {
            "date": str(self.date.date()),
            "weights": self.weights,
            "cash": self.cash,
            "ready": self.ready,
            "regime": self.regime,
            "regime_label": self.regime_label,
            "regime_probs": None if self.regime_probs is None else list(self.regime_probs),
            "diagnostics": self.diagnostics,
        }


class Strategy(ABC):
    """Base class: bar bookkeeping and validation, state envelope.

    Subclasses implement :meth:`_step` (one bar in, one signal out), :meth:`_state` and
    :meth:`_restore`, and set the class attribute ``name`` (and ``has_regimes`` when their
    signals carry regime probabilities, so a reader can tell "none yet" from "none ever").

    Parameters
    ----------
    symbols : sequence of str
        The universe, in the column order of the bars.
    """

    name: ClassVar[str]
    has_regimes: ClassVar[bool] = False

    def __init__(self, symbols: Sequence[str]) -> None:
        if len(symbols) == 0 or len(set(symbols)) != len(symbols):
            raise ValueError(f"symbols must be non-empty and unique, got {list(symbols)!r}")
        self.symbols = [str(s) for s in symbols]
        self.last_date: pd.Timestamp | None = None

    def update(self, bars: pd.DataFrame) -> Signal:
        """Consume the bars not seen yet and return the signal of the last one.

        Parameters
        ----------
        bars : DataFrame of shape (n_bars, n_assets)
            Daily closes indexed by session date with one column per symbol. Rows dated on or
            before the last bar already seen are skipped (re-delivery is harmless).

        Raises
        ------
        BarsError
            If a symbol is missing, dates are unsorted or duplicated, a price is not a
            positive number, or no bar is new.
        """
        signal: Signal | None = None
        for signal in self.iter_update(bars):  # noqa: B007 - only the last one is returned
            pass
        if signal is None:
            raise BarsError(f"no bar after {self.last_date} to update on")
        return signal

    def iter_update(self, bars: pd.DataFrame) -> Iterator[Signal]:
        """Like :meth:`update`, yielding the signal of every new bar (the backtest's loop)."""
        dates, values, extra = self._new_rows(bars)
        for i, (date, closes) in enumerate(zip(dates, values, strict=True)):
            if extra is not None:
                self._observe(extra[i])
            signal = self._step(date, closes)
            self.last_date = date
            yield signal

    @property
    def extra_inputs(self) -> tuple[str, ...]:
        """Columns of the bars beside the closes this strategy reads (none by default).

        A strategy that names some (e.g. the true macro series, ``VIX``) is given each bar's
        values in :meth:`_observe` before :meth:`_step`; they must be finite numbers, of any
        sign, and the caller joins them to the closes causally (a value dated after a session
        never in its row: :func:`regime_trader.strategies.macro.join_macro`).
        """
        return ()

    def _observe(self, values: np.ndarray) -> None:
        """The bar's :attr:`extra_inputs`, in that order, just before its :meth:`_step`."""
        raise NotImplementedError(f"{type(self).__name__} declares no extra inputs")

    def _new_rows(
        self, bars: pd.DataFrame
    ) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray | None]:
        """The dates, closes (in ``symbols`` order) and extra inputs (None without any) of the
        bars after ``last_date``.

        One NumPy array for all of them: positions by ``get_indexer`` and ``searchsorted``
        rather than a column selection and a boolean mask of pandas frames per call.
        """
        columns = self._positions(bars, self.symbols, "symbols")
        index = pd.DatetimeIndex(bars.index)
        if not index.is_monotonic_increasing or index.has_duplicates:
            raise BarsError("bar dates must be strictly increasing")
        first = 0 if self.last_date is None else int(index.searchsorted(self.last_date, "right"))
        values = bars.iloc[first:, columns].to_numpy(dtype=float)
        dates = index[first:]
        bad = np.argwhere(~np.isfinite(values) | (values <= 0))
        if bad.size:
            i, j = (int(v) for v in bad[0])
            raise BarsError(
                f"{self.symbols[j]} on {dates[i].date()}: "
                f"close {values[i, j]!r} is not a positive price"
            )
        names = list(self.extra_inputs)
        if not names:
            return dates, values, None
        extra = bars.iloc[first:, self._positions(bars, names, "inputs")].to_numpy(dtype=float)
        blank = np.argwhere(~np.isfinite(extra))
        if blank.size:
            i, j = (int(v) for v in blank[0])
            raise BarsError(f"{names[j]} on {dates[i].date()}: no value ({extra[i, j]!r})")
        return dates, values, extra

    @staticmethod
    def _positions(bars: pd.DataFrame, names: list[str], what: str) -> np.ndarray:
        columns = bars.columns.get_indexer(pd.Index(names))
        if (columns < 0).any():
            missing = [s for s, c in zip(names, columns, strict=True) if c < 0]
            raise BarsError(f"bars lack {what} {missing} (have {list(bars.columns)})")
        return columns

    @abstractmethod
    def _step(self, date: pd.Timestamp, closes: np.ndarray) -> Signal:
        """Decide at the close of ``date`` from that bar's closes, shape (n_assets,)."""

    def settings(self) -> dict[str, Any]:
        """The parameters this strategy was built with, as JSON values (none by default).

        Two strategies of the same ``name`` and universe with equal settings make the same
        decisions from the same bars: the service compares a restored strategy's settings with
        the configured ones to notice a changed profile.
        """
        return {}

    @abstractmethod
    def _state(self) -> dict[str, Any]:
        """Subclass state: JSON values, with ndarrays for arrays (see :class:`StrategyState`)."""

    @abstractmethod
    def _restore(self, state: dict[str, Any]) -> None:
        """Load what :meth:`_state` returned (arrays as ndarrays or as nested lists)."""

    @classmethod
    @abstractmethod
    def _construct(cls, state: dict[str, Any]) -> Self:
        """A fresh instance with the parameters recorded in ``state``."""

    @classmethod
    def from_params(cls, symbols: Sequence[str], params: Mapping[str, Any]) -> Self:
        """A fresh instance from configuration (a portfolio's ``strategy_params``): none by
        default; a strategy with parameters reads its own.

        Raises
        ------
        ValueError
            For a parameter the strategy does not take, or one out of range.
        """
        if params:
            raise ValueError(f"strategy {cls.name!r} takes no parameters, got {sorted(params)}")
        return cls(symbols)

    def save_state(self) -> StrategyState:
        """Everything needed to continue exactly: the compact form (JSON header, arrays)."""
        return StrategyState(
            {
                "strategy": self.name,
                "version": STATE_VERSION,
                "symbols": self.symbols,
                "last_date": None if self.last_date is None else self.last_date.isoformat(),
                **self._state(),
            }
        )

    def state_dict(self) -> dict[str, Any]:
        """The same state as :meth:`save_state`, as one JSON-serialisable document."""
        tree: dict[str, Any] = json_tree(self.save_state().tree)
        return tree

    @classmethod
    def from_state(cls, state: Mapping[str, Any] | StrategyState) -> Self:
        """Rebuild a strategy from :meth:`save_state` or :meth:`state_dict`.

        Versions 1 (the JSON document of earlier releases) and 2 are read; a restored strategy
        gives the same next signal as the one that saved it, bit for bit.

        Raises
        ------
        ValueError
            If the state belongs to another strategy or an unknown state version.
        """
        tree = dict(state.tree if isinstance(state, StrategyState) else state)
        if tree.get("strategy") != cls.name:
            raise ValueError(f"state is for strategy {tree.get('strategy')!r}, not {cls.name!r}")
        if tree.get("version") not in READABLE_VERSIONS:
            raise ValueError(
                f"state version {tree.get('version')!r} is not one of {READABLE_VERSIONS}; "
                "refit needed"
            )
        strategy = cls._construct(tree)
        last = tree["last_date"]
        strategy.last_date = None if last is None else pd.Timestamp(last)
        strategy._restore(tree)
        return strategy

    def _signal(self, date: pd.Timestamp, weights: np.ndarray, ready: bool, **extra: Any) -> Signal:
        """Build a Signal from a weight vector, clipping rounding dust below zero."""
        w = np.clip(np.asarray(weights, dtype=float), 0.0, None)
        total = float(w.sum())
        if total > 1.0:
            w = w / total
            total = 1.0
        if ready:
            # Every ready signal reports its gross exposure (a fully invested one: 1), so
            # metrics, alerts and reports need no case for strategies that do not scale it.
            extra["diagnostics"] = {"exposure": total, **extra.get("diagnostics", {})}
        return Signal(
            date=date,
            weights={s: float(v) for s, v in zip(self.symbols, w, strict=True)},
            cash=max(0.0, 1.0 - total),
            ready=ready,
            **extra,
        )


class ConfiguredStrategy(Strategy):
    """A strategy built from one parameter record (skfolio's contract: the parameters in
    ``__init__``), read from configuration by the record's ``from_dict`` and saved in its state
    as ``params``.

    Subclasses set ``params_type`` (a record class with ``from_dict``/``to_dict``) and take
    ``(symbols, params)``.
    """

    params_type: ClassVar[type[Any]]

    def __init__(self, symbols: Sequence[str], params: Any = None) -> None:
        # The signature every subclass has, so ``cls(symbols, record)`` below type-checks.
        super().__init__(symbols)

    @classmethod
    def from_params(cls, symbols: Sequence[str], params: Mapping[str, Any]) -> Self:
        # Fields left out keep their defaults, nested tables field by field.
        return cls(symbols, cls.params_type.from_dict(params))

    @classmethod
    def _construct(cls, state: dict[str, Any]) -> Self:
        return cls.from_params(state["symbols"], cls._saved_params(state["params"]))

    @classmethod
    def _saved_params(cls, saved: Mapping[str, Any]) -> Mapping[str, Any]:
        """Saved parameters as :meth:`from_params` reads them now (as saved, by default; a
        subclass restores the behaviour an older state was computed with)."""
        return saved
