"""Causal features of daily prices, computed online one bar at a time.

Every feature of day t is a function of closes up to and including t only, and is computed by
a recursion whose whole state fits in a small JSON-serialisable dict, so the live service and
the backtest compute bit-identical features and a restored strategy continues exactly.

Per asset ``S`` (r_t is the log return of day t):

``S_ret``
    r_t, the log return.
``S_vnr``
    r_t / sigma_{t-1}: the volatility-normalised return, scaled by the EWMA volatility known
    *before* the day (so a crash day is a large value, not a unit one).
``S_logvol``
    log of the annualised EWMA volatility sigma_t (bias-corrected EWMA of r^2, as pandas'
    ``ewm(adjust=True)``), the feature that separates calm from stressed markets.
``S_trend``
    The adaptive trend: Kaufman's efficiency ratio over ``trend_window`` days, signed by the
    direction of the move, in [-1, 1]. Near +-1 for a clean trend, near 0 for noise.
``S_kama_gap``
    The distance of the log price above its noise-reduced series (Kaufman's adaptive moving
    average, KAMA), in units of sigma_t. KAMA follows the price quickly in trends and barely
    moves in noise, so the gap is a denoised trend position.

Cross-asset: ``corr_<EQUITY>_<BOND>``, the EWMA correlation of the first two assets' returns
(stock-bond correlation flips sign across inflation regimes).

Reference: P. J. Kaufman, *Trading Systems and Methods*, 5th ed., ch. 17 (efficiency ratio,
KAMA); J.P. Morgan/Reuters, *RiskMetrics — Technical Document* (1996) for EWMA volatility.

Features need a warm-up (``FeatureSpec.warmup``) before all of them are defined; rows before
that are NaN and :attr:`FeatureEngine.ready` is False.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

import numpy as np
import pandas as pd

from regime_trader.strategies._checks import check_at_least, check_positive
from regime_trader.strategies.params import record_from_dict

__all__ = [
    "EwmaCorrelation",
    "FeatureEngine",
    "FeatureSpec",
    "PairedRecursion",
    "check_closes",
    "compute_features",
    "decay",
    "feature_names",
    "pair_symbols",
    "stock_bond_pair",
]

TRADING_DAYS_PER_YEAR = 252


def decay(halflife: float) -> float:
    """EWMA decay factor for a half-life in days."""
    return math.exp(-math.log(2.0) / halflife)


def check_closes(closes: np.ndarray, n_assets: int) -> np.ndarray:
    """One bar of closes as floats, or an error: shape (n_assets,), finite and positive."""
    closes = np.asarray(closes, dtype=float)
    if closes.shape != (n_assets,) or not np.all(np.isfinite(closes) & (closes > 0)):
        raise ValueError(f"closes must be {n_assets} positive numbers, got {closes}")
    return closes


class EwmaCorrelation:
    """The stock-bond correlation as a causal EWMA recursion (shared by both feature engines).

    Parameters
    ----------
    halflife : float
        Half-life in days of the EWMA sums.
    """

    def __init__(self, halflife: float) -> None:
        self.lam = decay(halflife)
        self.num = np.zeros(3)  # EWMA of r_e^2, r_b^2, r_e r_b
        self.den = 0.0

    def update(self, r_equity: float, r_bond: float) -> float:
        """Add today's returns; return the correlation in [-1, 1] (0 while a variance is 0)."""
        self.num = self.lam * self.num + np.array([r_equity**2, r_bond**2, r_equity * r_bond])
        self.den = self.lam * self.den + 1.0
        var_e, var_b, cov = self.num / self.den
        if var_e <= 0 or var_b <= 0:
            return 0.0
        return float(np.clip(cov / math.sqrt(var_e * var_b), -1.0, 1.0))

    def state_dict(self) -> dict[str, Any]:
        """The sums, under the keys both engines' states have always used."""
        return {"corr_num": self.num.tolist(), "corr_den": self.den}

    def load(self, state: dict[str, Any]) -> None:
        """Restore the sums from :meth:`state_dict` (or an engine state holding its keys)."""
        self.num = np.asarray(state["corr_num"], dtype=float)
        self.den = float(state["corr_den"])


@dataclass(frozen=True)
class FeatureSpec:
    """Parameters of the feature recursions.

    Parameters
    ----------
    vol_halflife : float, default 10
        Half-life in days of the EWMA variance behind ``vnr`` and ``logvol``.
    trend_window : int, default 20
        Days of the efficiency ratio and of KAMA's efficiency.
    kama_fast, kama_slow : int, default 2 and 30
        Fastest and slowest equivalent EMA spans of KAMA.
    corr_halflife : float, default 63
        Half-life in days of the stock-bond EWMA correlation.
    """

    vol_halflife: float = 10.0
    trend_window: int = 20
    kama_fast: int = 2
    kama_slow: int = 30
    corr_halflife: float = 63.0

    def __post_init__(self) -> None:
        check_positive("vol_halflife", self.vol_halflife)
        check_positive("corr_halflife", self.corr_halflife)
        check_at_least("trend_window", self.trend_window, 2)
        if not 1 <= self.kama_fast < self.kama_slow:
            raise ValueError(
                f"need 1 <= kama_fast < kama_slow, got {self.kama_fast}, {self.kama_slow}"
            )

    @property
    def warmup(self) -> int:
        """Bars (prices) needed before every feature is defined."""
        return self.trend_window + 1


PER_ASSET = ("ret", "vnr", "logvol", "trend", "kama_gap")


def stock_bond_pair(
    symbols: Sequence[str], equity: str | None = None, bond: str | None = None
) -> tuple[int, int] | None:
    """Positions of the equity and bond assets of the correlation feature.

    Parameters
    ----------
    symbols : sequence of str
    equity, bond : str, optional
        Default: the first and the second symbol.

    Returns
    -------
    (int, int) or None
        None for a single symbol (no pair).

    Raises
    ------
    ValueError
        If a named symbol is not in ``symbols``, or both name the same one.
    """
    for name, value in (("equity_symbol", equity), ("bond_symbol", bond)):
        if value is not None and value not in symbols:
            raise ValueError(f"{name} {value!r} is not one of the symbols {list(symbols)}")
    if len(symbols) < 2:
        if bond is not None:
            raise ValueError(f"bond_symbol {bond!r} needs a second symbol besides the equity")
        return None
    i = list(symbols).index(equity) if equity is not None else 0
    j = list(symbols).index(bond) if bond is not None else (1 if i == 0 else 0)
    if i == j:
        raise ValueError(f"equity_symbol and bond_symbol are both {symbols[i]!r}")
    return i, j


def correlation_name(symbols: Sequence[str], pair: tuple[int, int] | None) -> list[str]:
    """The correlation column's name, ``corr_<EQUITY>_<BOND>``, or none without a pair."""
    return [] if pair is None else [f"corr_{symbols[pair[0]]}_{symbols[pair[1]]}"]


def feature_names(
    symbols: Sequence[str], equity: str | None = None, bond: str | None = None
) -> list[str]:
    """Column names produced for ``symbols`` (per-asset blocks, then the correlation)."""
    names = [f"{s}_{kind}" for s in symbols for kind in PER_ASSET]
    return names + correlation_name(symbols, stock_bond_pair(symbols, equity, bond))


class _CorrelationSpec(Protocol):
    """A feature spec: a dataclass with the correlation's half-life."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    @property
    def corr_halflife(self) -> float: ...


SpecT = TypeVar("SpecT", bound=_CorrelationSpec)


class PairedRecursion(ABC, Generic[SpecT]):
    """What both feature engines share: the universe, the stock-bond pair and its correlation.

    Subclasses give their spec's default (:meth:`default_spec`) and allocate their own
    recursions (:meth:`_allocate`).

    Parameters
    ----------
    symbols : sequence of str
        Asset names, in column order.
    spec : optional
        Recursion parameters (the subclass's spec, with a ``corr_halflife``).
    equity, bond : str, optional
        The assets of the stock-bond correlation; default the first and the second symbol.
    """

    def __init__(
        self,
        symbols: Sequence[str],
        spec: SpecT | None = None,
        *,
        equity: str | None = None,
        bond: str | None = None,
    ) -> None:
        if len(symbols) == 0:
            raise ValueError("symbols must not be empty")
        self.symbols = list(symbols)
        self.spec: SpecT = spec if spec is not None else self.default_spec()
        self.pair = stock_bond_pair(self.symbols, equity, bond)
        self.returns = np.full(len(self.symbols), np.nan)  # the last bar's log returns
        self.n_bars = 0
        self._corr = EwmaCorrelation(self.spec.corr_halflife)
        self._allocate()

    @classmethod
    @abstractmethod
    def default_spec(cls) -> SpecT:
        """The spec used when none is given."""

    @abstractmethod
    def _allocate(self) -> None:
        """Set up the subclass's recursions (``symbols`` and ``spec`` are set)."""

    def _correlation(self, returns: np.ndarray) -> float | None:
        """Update the stock-bond correlation with the day's returns (None without a pair)."""
        if self.pair is None:
            return None
        return self._corr.update(float(returns[self.pair[0]]), float(returns[self.pair[1]]))

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the recursions exactly (JSON-serialisable)."""
        return {
            "symbols": self.symbols,
            "pair": None if self.pair is None else list(self.pair),
            "spec": asdict(self.spec),
            "n_bars": self.n_bars,
            **self._corr.state_dict(),
            **self._own_state(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        """Rebuild an engine from :meth:`state_dict`.

        A state saved before the equity and bond were named has the first two symbols.
        """
        symbols = state["symbols"]
        equity, bond = pair_symbols(symbols, state.get("pair"))
        spec = record_from_dict(type(cls.default_spec()), state["spec"])
        engine = cls(symbols, spec, equity=equity, bond=bond)
        engine.n_bars = int(state["n_bars"])
        engine._corr.load(state)
        engine._load(state)
        return engine

    @abstractmethod
    def _own_state(self) -> dict[str, Any]:
        """The subclass's recursions, JSON-serialisable."""

    @abstractmethod
    def _load(self, state: dict[str, Any]) -> None:
        """Load what :meth:`_own_state` saved."""


class FeatureEngine(PairedRecursion[FeatureSpec]):
    """Online feature recursions over a fixed list of symbols, by a :class:`FeatureSpec`.

    Constructed as :class:`PairedRecursion` (symbols, spec, equity, bond).
    """

    @classmethod
    def default_spec(cls) -> FeatureSpec:
        return FeatureSpec()

    def _allocate(self) -> None:
        n = len(self.symbols)
        self._lam_vol = decay(self.spec.vol_halflife)
        self._log_prices: list[list[float]] = []  # last trend_window + 1 log closes
        self._var_num = np.zeros(n)
        self._var_den = 0.0
        self._kama = np.zeros(n)  # set to the first log close on the first bar

    @property
    def ready(self) -> bool:
        """True once every feature is defined."""
        return self.n_bars >= self.spec.warmup

    @property
    def names(self) -> list[str]:
        """Feature column names."""
        names = [f"{s}_{kind}" for s in self.symbols for kind in PER_ASSET]
        return names + correlation_name(self.symbols, self.pair)

    def update(self, closes: np.ndarray) -> np.ndarray:
        """Consume one bar of closes and return its feature row.

        Parameters
        ----------
        closes : ndarray of shape (n_assets,)
            Positive closes of the new bar, in ``symbols`` order.

        Returns
        -------
        ndarray of shape (n_features,)
            The features of this bar; NaN where not yet defined.
        """
        log_p = np.log(check_closes(closes, len(self.symbols)))
        self.n_bars += 1
        window = self.spec.trend_window
        self._log_prices.append(log_p.tolist())
        if len(self._log_prices) > window + 1:
            del self._log_prices[0]
        row = np.full(len(self.names), np.nan)
        if len(self._log_prices) < 2:
            self._kama = log_p.copy()
            return row
        ret = log_p - np.asarray(self._log_prices[-2])
        self.returns = ret
        prev_vol = np.sqrt(self._var_num / self._var_den) if self._var_den > 0 else None
        self._var_num = self._lam_vol * self._var_num + ret**2
        self._var_den = self._lam_vol * self._var_den + 1.0
        vol = np.sqrt(self._var_num / self._var_den)
        er = self._efficiency_ratio()
        self._update_kama(log_p, er)
        n = len(self.symbols)
        block = np.full((n, len(PER_ASSET)), np.nan)
        block[:, 0] = ret
        if prev_vol is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                block[:, 1] = np.where(prev_vol > 0, ret / prev_vol, 0.0)
        block[:, 2] = np.log(np.maximum(vol, 1e-12) * math.sqrt(TRADING_DAYS_PER_YEAR))
        if er is not None:
            block[:, 3] = er
            with np.errstate(divide="ignore", invalid="ignore"):
                block[:, 4] = np.where(vol > 0, (log_p - self._kama) / vol, 0.0)
        row[: n * len(PER_ASSET)] = block.ravel()
        corr = self._correlation(ret)
        if corr is not None:
            row[-1] = corr
        return row

    def _efficiency_ratio(self) -> np.ndarray | None:
        window = self.spec.trend_window
        if len(self._log_prices) < window + 1:
            return None
        path = np.asarray(self._log_prices)
        change = path[-1] - path[0]
        noise = np.abs(np.diff(path, axis=0)).sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(noise > 0, change / noise, 0.0)

    def _update_kama(self, log_p: np.ndarray, er: np.ndarray | None) -> None:
        fast = 2.0 / (self.spec.kama_fast + 1)
        slow = 2.0 / (self.spec.kama_slow + 1)
        efficiency = np.abs(er) if er is not None else np.zeros_like(log_p)
        smoothing = (efficiency * (fast - slow) + slow) ** 2
        self._kama = self._kama + smoothing * (log_p - self._kama)

    def _own_state(self) -> dict[str, Any]:
        return {
            "log_prices": self._log_prices,
            "var_num": self._var_num.tolist(),
            "var_den": self._var_den,
            "kama": self._kama.tolist(),
        }

    def _load(self, state: dict[str, Any]) -> None:
        self._log_prices = [list(map(float, row)) for row in state["log_prices"]]
        self._var_num = np.asarray(state["var_num"], dtype=float)
        self._var_den = float(state["var_den"])
        self._kama = np.asarray(state["kama"], dtype=float)


def pair_symbols(symbols: Sequence[str], saved: list[int] | None) -> tuple[str | None, str | None]:
    """The equity and bond symbols of a saved ``pair`` (a state from before it: the default)."""
    if saved is None:
        return None, None
    return symbols[saved[0]], symbols[saved[1]]


def compute_features(prices: pd.DataFrame, spec: FeatureSpec | None = None) -> pd.DataFrame:
    """Run :class:`FeatureEngine` over a frame of closes.

    Parameters
    ----------
    prices : DataFrame of shape (n_days, n_assets)
        Positive closes indexed by date.
    spec : FeatureSpec, optional
        Recursion parameters.

    Returns
    -------
    DataFrame of shape (n_days, n_features)
        Row t depends on rows up to t only.
    """
    engine = FeatureEngine([str(c) for c in prices.columns], spec)
    rows = [engine.update(row) for row in prices.to_numpy(dtype=float)]
    return pd.DataFrame(rows, index=prices.index, columns=engine.names)
