"""The backtest's second price file: a momentum sleeve's stocks beside the assets' closes.

``regime-trader backtest --prices ETFS.csv --sleeve-prices STOCKS.csv --strategy erc_sleeve``
reads both files with the same loader and carry policy
(:func:`~regime_trader.service.pricefile.load_prices_carried`) and joins them on the sessions
they share: the backtest runs on the overlap. A session inside the overlap that one file has and
the other lacks is dropped from both and reported (one file missing a session is a data fault
worth seeing, not a reason to refuse the run); a symbol in both files is refused.

:func:`sleeve_params` is how the backtest and the research protocol give ``erc_sleeve`` the
sleeve file's columns as its ``sleeve_symbols`` unless its parameters name them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from regime_trader.service.pricefile import PriceFileError, load_prices_carried, validate_prices
from regime_trader.strategies.missing_bars import CarriedClose
from regime_trader.strategies.sleeve_erc import SleeveERC

__all__ = ["SleeveJoin", "join_sleeve_prices", "sleeve_params"]


@dataclass(frozen=True)
class SleeveJoin:
    """The joined closes, the sleeve's columns and what the join left out.

    Attributes
    ----------
    closes : DataFrame
        The assets' columns, then the sleeve's, on the sessions both files have.
    sleeve_symbols : tuple of str
        The sleeve file's columns, in its order.
    carried : tuple of CarriedClose
        Closes the carry policy filled in the sleeve file.
    dropped : tuple of Timestamp
        Sessions inside the common date range that only one of the files has.
    """

    closes: pd.DataFrame
    sleeve_symbols: tuple[str, ...]
    carried: tuple[CarriedClose, ...]
    dropped: tuple[pd.Timestamp, ...]

    def warnings(self) -> list[str]:
        """One line per dropped session, for the command's warnings."""
        return [f"{day.date()} is in one file only; dropped" for day in self.dropped]


def join_sleeve_prices(
    assets: pd.DataFrame, path: str | Path, max_carry_sessions: int
) -> SleeveJoin:
    """Load the sleeve's file and join it to the (validated) assets' closes on common sessions.

    Raises
    ------
    PriceFileError
        If the file is refused by the loader, shares a symbol with the assets, or the two have
        fewer than two sessions in common.
    """
    loaded = load_prices_carried(path, max_carry_sessions)
    stocks = loaded.closes
    both = sorted(set(assets.columns) & set(stocks.columns))
    if both:
        raise PriceFileError(f"{path}: symbols {both[:5]} are in the --prices file too")
    joined = assets.join(stocks, how="inner")
    if len(joined) < 2:
        raise PriceFileError(
            f"{path}: {len(joined)} session(s) in common with the --prices file; need 2"
        )
    first, last = joined.index[0], joined.index[-1]
    spans = [
        frame.index[(frame.index >= first) & (frame.index <= last)] for frame in (assets, stocks)
    ]
    dropped = spans[0].symmetric_difference(spans[1])
    closes = validate_prices(joined, source=f"--prices joined with {path}")
    return SleeveJoin(
        closes,
        tuple(str(c) for c in stocks.columns),
        tuple(loaded.carried),
        tuple(pd.Timestamp(d) for d in dropped),
    )


def sleeve_params(name: str, params: dict[str, Any], sleeve: SleeveJoin | None) -> dict[str, Any]:
    """The strategy's parameters with ``sleeve_symbols`` defaulting to the sleeve file's.

    Raises
    ------
    ValueError
        If a sleeve is given for a strategy other than ``erc_sleeve``.
    """
    if sleeve is None:
        return params
    if name != SleeveERC.name:
        raise ValueError(f"--sleeve-prices is for --strategy {SleeveERC.name}, not {name}")
    return {"sleeve_symbols": list(sleeve.sleeve_symbols), **params}
