"""Daily close prices from a CSV file, validated at the boundary.

Two layouts are accepted:

- wide: ``date,SYM1,SYM2,...`` — one row per session, one column of closes per symbol;
- long: ``date,symbol,close`` — one row per (session, symbol).

Either way the result is a wide frame of closes indexed by session date, strictly increasing,
with every price finite and positive. Anything else is refused with a :class:`PriceFileError`
that names the file, the line (as a spreadsheet shows it: the header is line 1), the column and
the value, because a backtest or a trade on silently repaired data is worse than none.

The one exception is a thin symbol's missing bar: with ``allow_missing`` a blank close (wide) or
an absent row (long) becomes NaN, and with ``max_carry_sessions`` it is carried by
:func:`regime_trader.strategies.missing_bars.carry_missing_closes`, the function the live cycle's
validation uses, so a backtest and the live service see the same closes.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pandas as pd

from regime_trader.strategies.missing_bars import (
    CarryResult,
    MissingBarsError,
    carry_missing_closes,
)

__all__ = ["PriceFileError", "load_prices", "load_prices_carried", "validate_prices"]

LONG_COLUMNS = ("date", "symbol", "close")
_SYMBOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-_/]{0,19}$")


class PriceFileError(ValueError):
    """The price file cannot be used; the message says where and why."""


def _line(position: int) -> int:
    """Spreadsheet line of the data row at ``position`` (header is line 1)."""
    return position + 2


def _header(path: Path) -> list[str]:
    """The column names exactly as the first line of the file spells them."""
    with path.open(encoding="utf-8", newline="") as handle:
        first = next(csv.reader(handle), [])
    return [name.strip() for name in first]


def _read(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise PriceFileError(f"{path}: no such file")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise PriceFileError(f"{path}: not a readable CSV file ({e})") from e
    frame.columns = [str(c).strip() for c in frame.columns]
    header = _header(path)
    if len(set(header)) != len(header):  # pandas would silently rename a repeat to "SPY.1"
        twice = sorted({h for h in header if header.count(h) > 1})
        raise PriceFileError(f"{path}: column {twice[0]!r} appears twice in the header")
    if "date" not in frame.columns:
        raise PriceFileError(
            f"{path}: no 'date' column (columns: {list(frame.columns)}); expected "
            "'date,SYM1,SYM2,...' or 'date,symbol,close'"
        )
    if frame.empty:
        raise PriceFileError(f"{path}: no data rows")
    return frame


def _parse_dates(path: Path, raw: pd.Series) -> pd.DatetimeIndex:
    parsed = pd.to_datetime(raw.str.strip(), format="%Y-%m-%d", errors="coerce")
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if bad.size:
        i = int(bad[0])
        raise PriceFileError(
            f"{path}: line {_line(i)}: date {raw.iloc[i]!r} is missing or not YYYY-MM-DD"
        )
    return pd.DatetimeIndex(parsed, name="date")


def _parse_prices(
    path: Path,
    frame: pd.DataFrame,
    lines: np.ndarray,
    dates: pd.DatetimeIndex,
    row_symbols: pd.Series | None = None,
    allow_missing: bool = False,
) -> pd.DataFrame:
    """Convert every column to float, refusing blanks, text, NaN, inf and non-positive.

    With ``allow_missing`` a blank cell becomes NaN (a missing bar); text, NaN written out,
    inf and non-positive numbers are still refused. The message names the line, the symbol
    (the column, or ``row_symbols`` in a long file), the session date and the value.
    """
    out = {}
    for column in frame.columns:
        raw = frame[column]
        text = raw.str.strip()
        values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float)
        blank = (text == "").to_numpy() if allow_missing else np.zeros(len(text), dtype=bool)
        bad = np.flatnonzero((~np.isfinite(values) | (values <= 0)) & ~blank)
        if bad.size:
            i = int(bad[0])
            symbol = column if row_symbols is None else row_symbols.iloc[i]
            raise PriceFileError(
                f"{path}: line {lines[i]}: {symbol} on {dates[i].date()} = {raw.iloc[i]!r} "
                "is not a positive price"
            )
        out[column] = values
    return pd.DataFrame(out, index=frame.index)


def _check_symbols(path: Path, symbols: list[str]) -> None:
    if not symbols:
        raise PriceFileError(f"{path}: no price columns besides 'date'")
    for symbol in symbols:
        if not _SYMBOL.match(symbol):
            raise PriceFileError(f"{path}: column {symbol!r} is not a ticker symbol")


def _from_long(path: Path, frame: pd.DataFrame, allow_missing: bool) -> pd.DataFrame:
    extra = sorted(set(frame.columns) - set(LONG_COLUMNS))
    missing = [c for c in LONG_COLUMNS if c not in frame.columns]
    if extra or missing:
        raise PriceFileError(
            f"{path}: a long file needs exactly the columns {LONG_COLUMNS}; "
            f"unknown {extra}, missing {missing}"
        )
    dates = _parse_dates(path, frame["date"])
    symbols = frame["symbol"].str.strip()
    _check_symbols(path, sorted(set(symbols)))
    lines = np.arange(len(frame)) + 2
    closes = _parse_prices(path, frame[["close"]], lines, dates, symbols)["close"].to_numpy()
    keyed = pd.DataFrame({"date": dates, "symbol": symbols.to_numpy(), "close": closes})
    duplicated = keyed.duplicated(["date", "symbol"], keep="first").to_numpy()
    if duplicated.any():
        i = int(np.flatnonzero(duplicated)[0])
        raise PriceFileError(
            f"{path}: line {_line(i)}: duplicate row for {symbols.iloc[i]} on {dates[i].date()}"
        )
    unsorted = np.flatnonzero(np.diff(dates.asi8) < 0)
    if unsorted.size:
        i = int(unsorted[0]) + 1
        raise PriceFileError(
            f"{path}: line {_line(i)}: date {dates[i].date()} comes after "
            f"{dates[i - 1].date()}; rows must be sorted by date"
        )
    wide = keyed.pivot(index="date", columns="symbol", values="close")
    holes = np.argwhere(wide.isna().to_numpy())
    if holes.size and not allow_missing:
        row, col = (int(v) for v in holes[0])
        raise PriceFileError(
            f"{path}: no close for {wide.columns[col]} on {wide.index[row].date()}"
        )
    wide.columns.name = None
    return wide


def _from_wide(path: Path, frame: pd.DataFrame, allow_missing: bool) -> pd.DataFrame:
    symbols = [c for c in frame.columns if c != "date"]
    _check_symbols(path, symbols)
    if len(set(frame.columns)) != len(frame.columns):
        raise PriceFileError(f"{path}: a column name appears twice: {list(frame.columns)}")
    dates = _parse_dates(path, frame["date"])
    lines = np.arange(len(frame)) + 2
    prices = _parse_prices(path, frame[symbols], lines, dates, allow_missing=allow_missing)
    prices.index = dates
    return prices


def validate_prices(
    prices: pd.DataFrame, source: str = "prices", *, allow_missing: bool = False
) -> pd.DataFrame:
    """Check an in-memory wide price frame with the same rules as a file.

    Parameters
    ----------
    prices : DataFrame of shape (n_sessions, n_assets)
        Closes indexed by date.
    source : str
        Name used in error messages.
    allow_missing : bool, default False
        Let NaN through (a missing bar, for the carry policy to judge).

    Returns
    -------
    DataFrame
        The same data as float64 with a ``DatetimeIndex`` named ``date``.

    Raises
    ------
    PriceFileError
        On duplicate or unsorted dates, or a missing, non-finite or non-positive price.
    """
    index = pd.DatetimeIndex(prices.index, name="date")
    dup = np.flatnonzero(index.duplicated())
    if dup.size:
        raise PriceFileError(f"{source}: duplicate date {index[int(dup[0])].date()}")
    back = np.flatnonzero(np.diff(index.asi8) <= 0)
    if back.size:
        i = int(back[0]) + 1
        raise PriceFileError(
            f"{source}: date {index[i].date()} comes after {index[i - 1].date()}; "
            "dates must be strictly increasing"
        )
    values = prices.to_numpy(dtype=float)
    bad = np.argwhere((~np.isfinite(values) | (values <= 0)) & ~(allow_missing & np.isnan(values)))
    if bad.size:
        row, col = (int(x) for x in bad[0])
        raise PriceFileError(
            f"{source}: {prices.columns[col]} on {index[row].date()} = {values[row, col]!r} "
            "is not a positive price"
        )
    return pd.DataFrame(values, index=index, columns=[str(c) for c in prices.columns])


def load_prices(path: str | Path, *, allow_missing: bool = False) -> pd.DataFrame:
    """Load and validate a wide or long CSV of daily closes.

    Parameters
    ----------
    path : str or Path
        The CSV file.
    allow_missing : bool, default False
        Keep a blank close (wide) or a (session, symbol) without a row (long) as NaN instead
        of refusing it; :func:`load_prices_carried` then applies the carry policy.

    Returns
    -------
    DataFrame of shape (n_sessions, n_assets)
        Float closes, ``DatetimeIndex`` named ``date`` strictly increasing, one column per
        symbol (in file order for wide files, alphabetical for long files).

    Raises
    ------
    PriceFileError
        If the file is missing or unreadable, has no ``date`` column, unknown columns, a
        missing or malformed date, duplicate or unsorted dates, or a price that is blank (unless
        ``allow_missing``), not a number, not finite or not positive.
    """
    path = Path(path)
    frame = _read(path)
    is_long = "symbol" in frame.columns or "close" in frame.columns
    if is_long:
        wide = _from_long(path, frame, allow_missing)
    else:
        wide = _from_wide(path, frame, allow_missing)
    return validate_prices(wide, source=str(path), allow_missing=allow_missing)


def load_prices_carried(path: str | Path, max_carry_sessions: int) -> CarryResult:
    """Load a price file whose thin symbols may miss bars, with the live cycle's carry policy.

    Parameters
    ----------
    path : str or Path
        The CSV file (as :func:`load_prices`, blanks allowed).
    max_carry_sessions : int
        See :func:`regime_trader.strategies.missing_bars.carry_missing_closes`; 0 refuses any
        missing bar.

    Returns
    -------
    CarryResult
        The closes, every one finite and positive, and the carried closes.

    Raises
    ------
    PriceFileError
        As :func:`load_prices`, or a missing bar the policy refuses (symbol and dates named).
    """
    prices = load_prices(path, allow_missing=True)
    empty = np.flatnonzero(prices.isna().all(axis=1).to_numpy())
    if empty.size:  # a row without any close is not a thin symbol's gap
        raise PriceFileError(f"{path}: no close for any symbol on {prices.index[empty[0]].date()}")
    try:
        return carry_missing_closes(prices, max_carry_sessions)
    except MissingBarsError as e:
        raise PriceFileError(f"{path}: {e}") from e
