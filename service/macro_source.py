"""Macro series (VIX, Treasury spreads) from a file or URL an operator points at, validated.

Alpaca serves neither the VIX nor yields. A portfolio that wants the true series names a CSV
file or an ``http(s)://`` URL of one, laid out as ``../shared/data/macro_vix_ust_1990_2019.csv``:
``date`` then at least the columns of
:data:`~regime_trader.strategies.macro.MACRO_COLUMNS` (``VIX``, ``SPREAD_10Y2Y``,
``SPREAD_10Y3M``; others are kept), one row per session, in percent. Without one, the proxies of
:func:`~regime_trader.strategies.macro.proxy_signals` are computed from ETFs Alpaca serves.

:func:`load_macro` refuses, with a :class:`MacroFileError` naming the source, the line and the
value: an unreachable source, a missing column, a blank or non-numeric value, duplicate or
unsorted dates. A file that already holds rows after a session cannot leak them into its
decision: :func:`~regime_trader.strategies.macro.join_macro`, the one join of the series to the
closes, gives each session the latest row dated on or before it.

``python -m regime_trader.service.macro_source PRICES.csv MACRO.csv --from D --to D`` prints the
proxies' correlations with the true series (the README's table).
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import numpy as np
import pandas as pd

from regime_trader.strategies.macro import MACRO_COLUMNS, ProxySpec, proxy_correlations

__all__ = ["MacroFileError", "load_macro", "shown_source"]

FETCH_TIMEOUT_SECS = 30.0


class MacroFileError(ValueError):
    """The macro series cannot be used; the message says where and why."""


def load_macro(source: str | Path) -> pd.DataFrame:
    """Read and validate the macro series at ``source`` (a path, or an http(s) URL).

    Returns
    -------
    DataFrame
        Floats indexed by session date, strictly increasing, every value finite.
    """
    where = shown_source(source)
    return _validated(
        where, pd.read_csv(io.StringIO(_text(source)), dtype=str, keep_default_na=False)
    )


def shown_source(source: str | Path) -> str:
    """``source`` as messages show it: a URL without its user, password, query or fragment
    (where a token would be), a path as it is."""
    where = str(source)
    if not where.startswith(("http://", "https://")):
        return where
    parts = urlsplit(where)
    host = parts.hostname or ""
    if parts.port is not None:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _text(source: str | Path) -> str:
    where = str(source)
    if where.startswith(("http://", "https://")):
        try:
            response = httpx.get(where, timeout=FETCH_TIMEOUT_SECS, follow_redirects=True)
            response.raise_for_status()
        except httpx.HTTPError as e:
            # httpx's message quotes the whole URL: name the kind of failure only.
            raise MacroFileError(
                f"{shown_source(where)}: cannot fetch the macro series ({_failure(e)})"
            ) from None
        return response.text
    path = Path(source)
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise MacroFileError(f"{path}: cannot read the macro series ({e})") from e


def _failure(error: httpx.HTTPError) -> str:
    if isinstance(error, httpx.HTTPStatusError):
        return f"HTTP {error.response.status_code}"
    return type(error).__name__


def _validated(where: str, frame: pd.DataFrame) -> pd.DataFrame:
    frame.columns = [str(c).strip() for c in frame.columns]
    needed = ["date", *MACRO_COLUMNS]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise MacroFileError(f"{where}: no column {missing}; the header is {list(frame.columns)}")
    if frame.empty:
        raise MacroFileError(f"{where}: no data rows")
    try:
        index = pd.DatetimeIndex(pd.to_datetime(frame["date"], format="%Y-%m-%d"), name="date")
    except ValueError as e:
        raise MacroFileError(f"{where}: a date is not YYYY-MM-DD ({e})") from e
    if index.has_duplicates or not index.is_monotonic_increasing:
        raise MacroFileError(f"{where}: dates must be strictly increasing")
    values = frame.drop(columns="date")
    numbers = values.apply(pd.to_numeric, errors="coerce")
    bad = ~np.isfinite(numbers.to_numpy(dtype=float))
    if bad.any():
        row, col = (int(i[0]) for i in np.nonzero(bad))
        raise MacroFileError(
            f"{where}: line {row + 2}, column {values.columns[col]!r}: "
            f"{values.iat[row, col]!r} is not a finite number"
        )
    return pd.DataFrame(numbers.to_numpy(dtype=float), index=index, columns=values.columns)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="ETF proxies against the true macro series")
    parser.add_argument("prices", type=Path, help="closes with the proxies' ETFs (wide CSV)")
    parser.add_argument("macro", help="the true series (a path or an http(s) URL)")
    parser.add_argument("--from", dest="start", required=True)
    parser.add_argument("--to", dest="end", required=True)
    args = parser.parse_args(argv)
    from regime_trader.service.pricefile import load_prices

    closes = load_prices(args.prices)
    spec = ProxySpec()
    rows = proxy_correlations(closes, load_macro(args.macro), args.start, args.end, spec)
    print(f"proxies of {args.prices.name}, {args.start} to {args.end}")
    print("| signal | proxy | r (daily) | n | r (non-overlapping) | 95% interval | n |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r.signal} | {_proxy_text(r.signal, spec)} | {r.daily:.2f} | {r.n_daily} | "
            f"{r.independent:.2f} | [{r.low:.2f}, {r.high:.2f}] | {r.n_independent} |"
        )
    return 0


def _proxy_text(signal: str, spec: ProxySpec) -> str:
    return {
        "vix": f"{spec.equity} realised vol, {spec.vol_window} sessions",
        "vix_change": f"its {spec.change_window}-session change",
        "curve_10y2y": f"{spec.short} - {spec.intermediate}, {spec.curve_window} sessions",
        "curve_10y3m": f"{spec.short} - {spec.long}, {spec.curve_window} sessions",
    }[signal]


if __name__ == "__main__":
    sys.exit(main())
