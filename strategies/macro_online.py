"""The macro signals as online recursions, one bar at a time: ETF proxies or the true series.

:class:`MacroProxyEngine` computes, for the bar just closed, the columns of
:func:`~regime_trader.strategies.macro.proxy_signals` a regime engine asked for (``vix``,
``vix_change``, ``curve_10y2y``, ``curve_10y3m``) from the universe's own closes, so the live
cycle and the backtest feed the model the same values, and a restored strategy continues
exactly: its whole state is three short rings of floats. Each signal needs only its own ETFs
(``vix`` the equity one; the curves the short and the intermediate or long Treasury ETF), which
must be in the universe. Until a signal's window is full its value is NaN, like every feature's
warm-up.

:class:`MacroSeriesEngine` computes the same columns from the true series
(:data:`~regime_trader.strategies.macro.MACRO_COLUMNS`: ``VIX``, ``SPREAD_10Y2Y``,
``SPREAD_10Y3M``) as :func:`~regime_trader.strategies.macro.macro_signals` defines them: the
VIX level and its ``change_window``-session change, the spreads' ``curve_window``-session
change. The strategy declares those columns as its extra inputs
(:attr:`~regime_trader.strategies.base.Strategy.extra_inputs`); the backtest and the live
cycle join them to the closes with :func:`~regime_trader.strategies.macro.join_macro`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from regime_trader.strategies.macro import MACRO_COLUMNS, TRADING_DAYS_PER_YEAR, ProxySpec
from regime_trader.strategies.params import record_from_dict

__all__ = [
    "MACRO_SIGNALS",
    "MacroEngine",
    "MacroProxyEngine",
    "MacroSeriesEngine",
    "macro_engine",
    "restore_macro_engine",
]

MACRO_SIGNALS = ("vix", "vix_change", "curve_10y2y", "curve_10y3m")


def _ordered(signals: Sequence[str]) -> list[str]:
    unknown = sorted(set(signals) - set(MACRO_SIGNALS))
    if unknown or not signals:
        raise ValueError(f"macro signals must be some of {list(MACRO_SIGNALS)}, got {signals}")
    return [s for s in MACRO_SIGNALS if s in signals]  # one fixed column order


class MacroProxyEngine:
    """Online proxies of ``signals`` (a subset of :data:`MACRO_SIGNALS`) over ``symbols``.

    Raises
    ------
    ValueError
        On an unknown signal, or a signal whose ETFs are not in ``symbols``.
    """

    def __init__(
        self, symbols: Sequence[str], signals: Sequence[str], spec: ProxySpec | None = None
    ) -> None:
        self.symbols = [str(s) for s in symbols]
        self.spec = spec or ProxySpec()
        self.signals = _ordered(signals)
        needed = {
            "vix": (self.spec.equity,),
            "vix_change": (self.spec.equity,),
            "curve_10y2y": (self.spec.short, self.spec.intermediate),
            "curve_10y3m": (self.spec.short, self.spec.long),
        }
        for signal in self.signals:
            missing = [s for s in needed[signal] if s not in self.symbols]
            if missing:
                raise ValueError(
                    f"macro signal {signal!r} needs {missing} in the universe {self.symbols}"
                )
        self._needs_vol = any(s.startswith("vix") for s in self.signals)
        self.ready = False  # every signal of the last row defined
        self._last_log: list[float] | None = None  # every symbol's last log close
        self._squared: list[float] = []  # the equity's last vol_window squared log returns
        self._vix: list[float] = []  # the last change_window + 1 VIX proxies
        self._logs: list[list[float]] = []  # the last curve_window + 1 log closes, all symbols

    @property
    def names(self) -> list[str]:
        """The engine's columns: ``macro_<signal>``."""
        return [f"macro_{s}" for s in self.signals]

    def update(self, closes: np.ndarray) -> np.ndarray:
        """Consume one bar of (positive) closes in ``symbols`` order; return its row."""
        log_p = [math.log(float(c)) for c in closes]
        spec, at = self.spec, self.symbols.index
        if self._last_log is not None and self._needs_vol:
            r = log_p[at(spec.equity)] - self._last_log[at(spec.equity)]
            _push(self._squared, r * r, spec.vol_window)
        self._last_log = log_p
        _push(self._logs, log_p, spec.curve_window + 1)
        vix = math.nan
        if len(self._squared) == spec.vol_window:
            vix = 100.0 * math.sqrt(sum(self._squared) / spec.vol_window * TRADING_DAYS_PER_YEAR)
        if not math.isnan(vix):
            _push(self._vix, vix, spec.change_window + 1)
        values = {
            "vix": vix,
            "vix_change": (
                self._vix[-1] - self._vix[0]
                if len(self._vix) == spec.change_window + 1
                else math.nan
            ),
            "curve_10y2y": self._moved(spec.short, spec.intermediate),
            "curve_10y3m": self._moved(spec.short, spec.long),
        }
        row = np.array([values[s] for s in self.signals], dtype=float)
        self.ready = bool(np.all(np.isfinite(row)))
        return row

    def _moved(self, short: str, long: str) -> float:
        """``short``'s minus ``long``'s log return over ``curve_window`` (NaN until full)."""
        if len(self._logs) < self.spec.curve_window + 1 or long not in self.symbols:
            return math.nan
        first, last, at = self._logs[0], self._logs[-1], self.symbols.index
        return (last[at(short)] - first[at(short)]) - (last[at(long)] - first[at(long)])

    def state_dict(self) -> dict[str, Any]:
        n = len(self.symbols)
        return {
            "symbols": list(self.symbols),
            "signals": list(self.signals),
            "spec": asdict(self.spec),
            "last_log": None if self._last_log is None else np.array(self._last_log),
            "squared": np.array(self._squared, dtype=float),
            "vix": np.array(self._vix, dtype=float),
            "logs": np.array(self._logs, dtype=float).reshape(len(self._logs), n),
            "ready": self.ready,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> MacroProxyEngine:
        spec = record_from_dict(ProxySpec, state["spec"], "macro_spec.")
        engine = cls(state["symbols"], state["signals"], spec)
        last = state["last_log"]
        engine._last_log = None if last is None else np.asarray(last, dtype=float).tolist()
        engine._squared = np.asarray(state["squared"], dtype=float).tolist()
        engine._vix = np.asarray(state["vix"], dtype=float).tolist()
        engine._logs = np.asarray(state["logs"], dtype=float).tolist()
        engine.ready = bool(state["ready"])
        return engine


class MacroSeriesEngine:
    """Online signals ``signals`` (a subset of :data:`MACRO_SIGNALS`) of the true series.

    Each bar, :meth:`observe` takes the series' values (:data:`MACRO_COLUMNS` order) and then
    :meth:`update` returns the row, equal to :func:`~regime_trader.strategies.macro.macro_signals`
    on the same rows. Its state is one ring of the last values.
    """

    def __init__(self, signals: Sequence[str], spec: ProxySpec | None = None) -> None:
        self.spec = spec or ProxySpec()
        self.signals = _ordered(signals)
        self.ready = False
        self._observed: list[float] | None = None  # this bar's values, until update
        self._rows: list[list[float]] = []  # the last max(windows) + 1 observed rows

    @property
    def names(self) -> list[str]:
        """The engine's columns: ``macro_<signal>``, as the proxies'."""
        return [f"macro_{s}" for s in self.signals]

    def observe(self, values: np.ndarray) -> None:
        """The bar's true values, in :data:`MACRO_COLUMNS` order."""
        if len(values) != len(MACRO_COLUMNS):
            raise ValueError(f"expected {list(MACRO_COLUMNS)}, got {len(values)} values")
        self._observed = [float(v) for v in values]

    def update(self, closes: np.ndarray) -> np.ndarray:
        """The row of the bar just observed (``closes`` are not used: the series are)."""
        if self._observed is None:
            raise ValueError("the macro series' values of this bar were not observed")
        spec = self.spec
        _push(self._rows, self._observed, max(spec.change_window, spec.curve_window) + 1)
        self._observed = None
        values = {
            "vix": self._rows[-1][0],
            "vix_change": self._change(0, spec.change_window),
            "curve_10y2y": self._change(1, spec.curve_window),
            "curve_10y3m": self._change(2, spec.curve_window),
        }
        row = np.array([values[s] for s in self.signals], dtype=float)
        self.ready = bool(np.all(np.isfinite(row)))
        return row

    def _change(self, column: int, window: int) -> float:
        """Column's change over ``window`` sessions (NaN until seen), as ``Series.diff``."""
        if len(self._rows) < window + 1:
            return math.nan
        return self._rows[-1][column] - self._rows[-1 - window][column]

    def state_dict(self) -> dict[str, Any]:
        return {
            "source": "series",
            "signals": list(self.signals),
            "spec": asdict(self.spec),
            "rows": np.array(self._rows, dtype=float).reshape(len(self._rows), len(MACRO_COLUMNS)),
            "ready": self.ready,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> MacroSeriesEngine:
        spec = record_from_dict(ProxySpec, state["spec"], "macro_spec.")
        engine = cls(state["signals"], spec)
        engine._rows = np.asarray(state["rows"], dtype=float).tolist()
        engine.ready = bool(state["ready"])
        return engine


MacroEngine = MacroProxyEngine | MacroSeriesEngine


def macro_engine(
    source: str, symbols: Sequence[str], signals: Sequence[str], spec: ProxySpec
) -> MacroEngine:
    """A fresh engine of ``source`` (``"proxy"`` or ``"series"``)."""
    if source == "series":
        return MacroSeriesEngine(signals, spec)
    return MacroProxyEngine(symbols, signals, spec)


def restore_macro_engine(state: dict[str, Any]) -> MacroEngine:
    """The engine saved in ``state`` (a state without ``source`` is a proxy engine's)."""
    if state.get("source") == "series":
        return MacroSeriesEngine.from_state(state)
    return MacroProxyEngine.from_state(state)


def _push(ring: list[Any], value: Any, size: int) -> None:
    ring.append(value)
    if len(ring) > size:
        del ring[0]
