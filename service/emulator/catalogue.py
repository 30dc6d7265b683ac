"""The default synthetic universe: a catalogue of real tickers with their own price paths.

Each catalogue symbol always gets the same synthetic series for a seed, whichever other
symbols are traded and in whatever order, so a symbol's price never depends on its neighbours
(a made-up ticker once took the column, hence the prices, that a real one would have had).
Symbols are generated in fixed groups of up to three with the regime-switching model of
:mod:`regime_trader.strategies.synthetic` (columns: equity-like, bond-like, real-asset-like), each
group scaled to the asset's usual drift and volatility; group ``k`` is drawn with seed ``seed + k``.
The first group is SPY, TLT, GLD unscaled, so those three have exactly the prices the
emulator always gave them.

``THIN_SYMBOL`` is a thinly traded catalogue ETF whose ``feed=iex`` daily bars miss about
one session in twenty (seeded); ``sip`` bars have every session.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from regime_trader.service.emulator.market import Market
from regime_trader.strategies.synthetic import DEFAULT_REGIMES, RegimeSpec, generate_market

__all__ = [
    "CATALOGUE",
    "CATALOGUE_SYMBOLS",
    "THIN_SYMBOL",
    "CatalogueEntry",
    "catalogue_closes",
    "thin_gaps",
]

THIN_SYMBOL = "QDEF"
# Share of sessions with no IEX bar for the thin symbol.
THIN_GAP_RATE = 0.05


@dataclass(frozen=True)
class CatalogueEntry:
    """A catalogue symbol: its group, its column in the group and its scaling.

    ``mean_scale`` and ``vol_scale`` multiply the column's annual drift and volatility in every
    regime of :data:`regime_trader.strategies.synthetic.DEFAULT_REGIMES`.
    """

    symbol: str
    group: int
    column: int
    mean_scale: float = 1.0
    vol_scale: float = 1.0


def _groups() -> tuple[CatalogueEntry, ...]:
    # (equity-like, bond-like, real-asset-like) per group, with (mean, vol) scales.
    table: list[list[tuple[str, float, float] | None]] = [
        [("SPY", 1.0, 1.0), ("TLT", 1.0, 1.0), ("GLD", 1.0, 1.0)],
        [("QQQ", 1.25, 1.35), ("IEF", 0.8, 0.55), ("DBC", 0.5, 1.2)],
        [("IWM", 0.9, 1.4), ("SHY", 0.6, 0.15), ("VNQ", 1.1, 1.4)],
        [("EFA", 0.7, 1.1), ("AGG", 0.8, 0.45), ("TIP", 0.7, 0.5)],
        [("EEM", 0.7, 1.5), ("LQD", 1.0, 0.75), ("HYG", 1.2, 0.6)],
        [("QUAL", 1.05, 0.95), None, None],
        [("MTUM", 1.1, 1.1), None, None],
        [("USMV", 0.9, 0.8), None, None],
        [("VLUE", 0.95, 1.05), None, None],
        [("SIZE", 0.95, 1.0), None, None],
        [("IWF", 1.15, 1.15), None, None],
        [(THIN_SYMBOL, 0.85, 0.85), None, None],
    ]
    entries = []
    for k, row in enumerate(table):
        for j, cell in enumerate(row):
            if cell is not None:
                entries.append(CatalogueEntry(cell[0], k, j, cell[1], cell[2]))
    return tuple(entries)


CATALOGUE: tuple[CatalogueEntry, ...] = _groups()
CATALOGUE_SYMBOLS: tuple[str, ...] = tuple(e.symbol for e in CATALOGUE)
_BY_SYMBOL = {e.symbol: e for e in CATALOGUE}


def _scaled_specs(entries: Sequence[CatalogueEntry]) -> tuple[RegimeSpec, ...]:
    scale_mean = [1.0, 1.0, 1.0]
    scale_vol = [1.0, 1.0, 1.0]
    for e in entries:
        scale_mean[e.column], scale_vol[e.column] = e.mean_scale, e.vol_scale
    return tuple(
        RegimeSpec(
            name=spec.name,
            annual_mean=tuple(m * s for m, s in zip(spec.annual_mean, scale_mean, strict=True)),
            annual_vol=tuple(v * s for v, s in zip(spec.annual_vol, scale_vol, strict=True)),
            correlation=spec.correlation,
        )
        for spec in DEFAULT_REGIMES
    )


def catalogue_closes(symbols: Sequence[str], sessions: Sequence[date], seed: int) -> pd.DataFrame:
    """Generate the closes of catalogue ``symbols`` on ``sessions``.

    Returns
    -------
    DataFrame of shape (n_sessions, n_symbols)
        Closes rounded to the cent, columns in the order of ``symbols``.

    Raises
    ------
    KeyError
        If a symbol is not in the catalogue.
    """
    index = pd.DatetimeIndex([pd.Timestamp(d) for d in sessions], name="date")
    wanted = [_BY_SYMBOL[s] for s in symbols]
    columns: dict[str, np.ndarray] = {}
    for group in sorted({e.group for e in wanted}):
        members = [e for e in CATALOGUE if e.group == group]
        names = [f"_pad{j}" for j in range(3)]
        for e in members:
            names[e.column] = e.symbol
        specs = DEFAULT_REGIMES if group == 0 else _scaled_specs(members)
        market = generate_market(len(index), names, seed=seed + group, sessions=index, specs=specs)
        for e in members:
            columns[e.symbol] = np.round(market.prices[e.symbol].to_numpy(dtype=float), 2)
    return pd.DataFrame({s: columns[s] for s in symbols}, index=index)


def thin_gaps(market: Market) -> dict[str, frozenset[date]]:
    """Return the sessions with no IEX bar of the thin symbol, if the market trades it.

    About :data:`THIN_GAP_RATE` of the sessions, drawn with a generator seeded by the symbol
    only, so the gaps are the same in every run and for every seed.
    """
    if not market.has(THIN_SYMBOL):
        return {}
    rng = np.random.default_rng(zlib.crc32(THIN_SYMBOL.encode()))
    dates = market.calendar.dates[: market.n_sessions]
    missing = rng.random(len(dates)) < THIN_GAP_RATE
    return {THIN_SYMBOL: frozenset(d for d, gone in zip(dates, missing, strict=True) if gone)}
