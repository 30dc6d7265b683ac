"""Daily bars in, validated before any strategy sees them.

Two sources behind one :class:`BarSource` protocol: :class:`AlpacaBars` (alpaca-py's
``StockHistoricalDataClient``, split- and dividend-adjusted, IEX or SIP feed, the timeouts and
retries of :class:`regime_trader.service.alpaca_http.AlpacaTransport`) and :class:`CsvBars` (a
price file read by :func:`regime_trader.service.pricefile.load_prices`). Both return raw closes;
:func:`check_bars` checks them against the broker's calendar and clock and drops the partial bar
of a session in progress (Alpaca serves today's bar, with the latest price as its close, while the
market is open).

A thin symbol's missing bar (a session the other symbols have) is carried by
:func:`regime_trader.strategies.missing_bars.carry_missing_closes` for at most
``max_carry_sessions`` sessions, the same function a backtest's price file goes through, so both
see the same closes.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from functools import partial
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import pandas as pd
from alpaca.data.historical.stock import StockHistoricalDataClient

from regime_trader.service.alpaca_http import AlpacaTransport, HttpPolicy
from regime_trader.service.alpaca_parsing import NEW_YORK, SessionDay, bars_to_frame
from regime_trader.service.exceptions import BadMarketDataError
from regime_trader.service.pricefile import PriceFileError, load_prices
from regime_trader.strategies.missing_bars import (
    CarriedClose,
    MissingBarsError,
    carry_missing_closes,
)

__all__ = ["AlpacaBars", "BarSource", "CsvBars", "ValidatedBars", "check_bars"]

MAX_PAGE_SIZE = 10_000  # Alpaca's limit per request
_MAX_PAGES = 10_000


class BarSource(Protocol):
    """Where daily closes come from."""

    def daily_closes(self, symbols: Sequence[str], start: date, end: date) -> pd.DataFrame:
        """Return closes of the sessions from ``start`` to ``end`` inclusive.

        Returns
        -------
        DataFrame of shape (n_sessions, n_symbols)
            Float closes, ``DatetimeIndex`` of session dates named ``date``, one column per
            requested symbol in the requested order. Not yet validated: NaN where a bar is
            missing. Pass the frame through :func:`check_bars`.
        """
        ...


class AlpacaBars:
    """Daily bars from Alpaca's market-data API (``GET /v2/stocks/bars``, adjustment ``all``).

    Parameters
    ----------
    key_id, secret_key : str
        API key pair.
    feed : {"iex", "sip"}, default "iex"
        IEX is free; SIP (all exchanges) needs a subscription for recent data.
    url_override : str, optional
        Base URL instead of Alpaca's, e.g. the emulator's.
    policy : HttpPolicy, optional
        Timeouts and retry budget (each page is retried on its own).
    page_size : int, default 10000
        Bars per request, 1 to 10000.
    """

    def __init__(
        self,
        key_id: str,
        secret_key: str,
        *,
        feed: Literal["iex", "sip"] = "iex",
        url_override: str | None = None,
        policy: HttpPolicy | None = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> None:
        if feed not in ("iex", "sip"):
            raise ValueError(f"feed must be 'iex' or 'sip', got {feed!r}")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be in 1..{MAX_PAGE_SIZE}, got {page_size!r}")
        self.feed = feed
        self.page_size = page_size
        self._client = StockHistoricalDataClient(
            key_id, secret_key, raw_data=True, url_override=url_override
        )
        self._http = AlpacaTransport(self._client, policy or HttpPolicy(), (key_id, secret_key))

    def daily_bars(self, symbols: Sequence[str], start: date, end: date) -> pd.DataFrame:
        """Return OHLCV bars of the sessions from ``start`` to ``end`` inclusive.

        Returns
        -------
        DataFrame of shape (n_bars, 7)
            Columns ``open high low close volume trade_count vwap`` indexed by
            (``date``, ``symbol``), sorted. Each symbol's dates were strictly increasing.

        Raises
        ------
        BadMarketDataError
            A malformed bar or page, or a symbol's bars duplicated or out of order.
        BrokerUnavailableError, AuthenticationError, BrokerRejectedError
            As for :class:`regime_trader.service.broker.AlpacaBroker`.
        """
        if not symbols:
            raise ValueError("symbols must not be empty")
        if end < start:
            raise ValueError(f"end {end} is before start {start}")
        params: dict[str, str | int] = {
            "symbols": ",".join(dict.fromkeys(symbols)),
            "timeframe": "1Day",
            "start": datetime.combine(start, time(0), NEW_YORK).isoformat(),
            "end": datetime.combine(end, time(0), NEW_YORK).isoformat(),  # a day bar's time
            "adjustment": "all",
            "feed": self.feed,
            "limit": self.page_size,
        }
        frames = self._pages(params)
        bars = pd.concat(frames, ignore_index=True) if frames else bars_to_frame({})
        _check_sequences(bars)
        return bars.set_index(["date", "symbol"]).sort_index()

    def _pages(self, params: dict[str, str | int]) -> list[pd.DataFrame]:
        frames: list[pd.DataFrame] = []
        seen: set[str] = set()
        for number in range(1, _MAX_PAGES + 1):
            call = f"GET /v2/stocks/bars (page {number})"
            raw = self._http.call(call, partial(self._client.get, "/stocks/bars", params))
            page, token = _page(call, raw)
            frames.append(page)
            if token is None:
                return frames
            if token in seen:
                raise BadMarketDataError(f"{call}: next_page_token {token!r} repeats")
            seen.add(token)
            params = {**params, "page_token": token}
        raise BadMarketDataError(f"GET /v2/stocks/bars: more than {_MAX_PAGES} pages")

    def daily_closes(self, symbols: Sequence[str], start: date, end: date) -> pd.DataFrame:
        """Return closes as :meth:`BarSource.daily_closes` describes."""
        bars = self.daily_bars(symbols, start, end)
        closes = bars["close"].unstack("symbol").reindex(columns=list(dict.fromkeys(symbols)))
        closes.index = pd.DatetimeIndex(closes.index, name="date")
        closes.columns.name = None
        return closes.astype(float)


def _page(call: str, raw: object) -> tuple[pd.DataFrame, str | None]:
    if not isinstance(raw, Mapping) or "bars" not in raw:
        raise BadMarketDataError(f"{call}: the answer has no 'bars' field")
    token = raw.get("next_page_token")
    if token is not None and (not isinstance(token, str) or not token):
        raise BadMarketDataError(f"{call}: next_page_token {token!r} is not a string or null")
    return bars_to_frame(raw["bars"]), token


def _check_sequences(bars: pd.DataFrame) -> None:
    """Refuse a symbol whose bars repeat a date or go back in time."""
    for symbol, dates in bars.groupby("symbol", sort=False)["date"]:
        steps = np.diff(dates.to_numpy().astype("datetime64[D]").astype(np.int64))
        bad = np.flatnonzero(steps <= 0)
        if bad.size:
            i = int(bad[0]) + 1
            day = dates.iloc[i].date()
            problem = "a second bar" if steps[i - 1] == 0 else f"a bar after {dates.iloc[i - 1]:%F}"
            raise BadMarketDataError(f"{symbol} on {day}: {problem} (bars must be in date order)")


class CsvBars:
    """Daily closes from a CSV price file (see :mod:`regime_trader.service.pricefile`), read on
    every call.

    Parameters
    ----------
    path : str or Path
        Wide (``date,SYM1,...``) or long (``date,symbol,close``) file.
    allow_missing : bool, default False
        Serve a blank close as NaN (a thin symbol's missing bar) for :func:`check_bars` to carry
        or refuse, as Alpaca's answer without that bar would be; by default a blank is refused
        when the file is read.
    """

    def __init__(self, path: str | Path, *, allow_missing: bool = False) -> None:
        self.path = Path(path)
        self.allow_missing = allow_missing

    def daily_closes(self, symbols: Sequence[str], start: date, end: date) -> pd.DataFrame:
        """Return closes as :meth:`BarSource.daily_closes` describes.

        Raises
        ------
        BadMarketDataError
            The file is unusable, or lacks a requested symbol.
        """
        try:
            prices = load_prices(self.path, allow_missing=self.allow_missing)
        except PriceFileError as e:
            raise BadMarketDataError(str(e)) from e
        missing = [s for s in symbols if s not in prices.columns]
        if missing:
            raise BadMarketDataError(f"{', '.join(missing)}: not in {self.path}")
        window = (prices.index >= pd.Timestamp(start)) & (prices.index <= pd.Timestamp(end))
        return prices.loc[window, list(dict.fromkeys(symbols))]


# ---------------------------------------------------------------------------- validation


@dataclass(frozen=True)
class ValidatedBars:
    """Closes that passed :func:`check_bars`, and the missing bars carried into them.

    Attributes
    ----------
    closes : DataFrame of shape (n_completed_sessions, n_symbols)
    carried : tuple of CarriedClose
        Every close carried into a session its symbol had no bar for, in date order.
    """

    closes: pd.DataFrame
    carried: tuple[CarriedClose, ...] = ()


def check_bars(
    closes: pd.DataFrame,
    sessions: Sequence[SessionDay],
    *,
    as_of: datetime,
    max_staleness_sessions: int = 0,
    max_jump_fraction: float = 0.5,
    max_carry_sessions: int = 0,
) -> ValidatedBars:
    """Check daily closes against the broker's calendar and clock; drop a partial bar.

    Parameters
    ----------
    closes : DataFrame of shape (n_sessions, n_symbols)
        Closes indexed by session date (as :meth:`BarSource.daily_closes` returns them). Pass
        the bars the strategy already saw along with the new ones when they are available: the
        jump check compares each bar with the previous one *of this frame*, so the first new
        bar is checked against the last seen close on the same adjustment basis.
    sessions : sequence of SessionDay
        The broker's calendar, increasing, covering every bar date and reaching ``as_of``.
    as_of : datetime
        Now, timezone-aware, from the broker's clock.
    max_staleness_sessions : int, default 0
        How many completed sessions the last bar may lag the last completed session.
    max_jump_fraction : float, default 0.5
        Largest believable one-session move, ``|close / previous close - 1|``.
    max_carry_sessions : int, default 0
        A symbol without a bar for a session the other symbols have gets its last close for at
        most this many consecutive sessions
        (:func:`regime_trader.strategies.missing_bars.carry_missing_closes`); 0 refuses any missing
        bar.

    Returns
    -------
    ValidatedBars
        The float closes of completed sessions only, and the carried closes.

    Raises
    ------
    BadMarketDataError
        Naming the symbol, the date and the problem: a date that is not a session or has not
        opened, duplicate or unsorted dates, a missing session, a missing bar beyond the carry
        policy, a non-finite or non-positive close, a stale last bar, or a jump over
        ``max_jump_fraction``.
    """
    _check_arguments(as_of, max_staleness_sessions, max_jump_fraction)
    who = ", ".join(str(c) for c in closes.columns) or "no symbols"
    days = _session_dates(closes, who)
    by_date = {s.date: s for s in sessions}
    keep = np.array([_is_complete(who, day, by_date, as_of) for day in days], dtype=bool)
    complete = pd.DataFrame(
        closes.to_numpy(dtype=float)[keep],
        index=pd.DatetimeIndex([pd.Timestamp(d) for d, k in zip(days, keep, strict=True) if k]),
        columns=[str(c) for c in closes.columns],
    )
    complete.index.name = "date"
    if complete.empty:
        raise BadMarketDataError(f"{who}: no bar of a completed session before {as_of}")
    done = [s.date for s in sessions if s.close <= as_of]
    _check_gaps(who, pd.DatetimeIndex(complete.index), done)
    _check_all_missing(complete)
    try:
        filled = carry_missing_closes(complete, max_carry_sessions)
    except MissingBarsError as e:
        raise BadMarketDataError(str(e)) from e
    complete = filled.closes
    _check_values(complete)
    _check_staleness(who, complete.index[-1].date(), done, as_of, max_staleness_sessions)
    _check_jumps(complete, max_jump_fraction)
    return ValidatedBars(complete, filled.carried)


def _check_arguments(as_of: datetime, max_staleness: int, max_jump: float) -> None:
    if as_of.tzinfo is None:
        raise ValueError(f"as_of must be timezone-aware, got {as_of!r}")
    if isinstance(max_staleness, bool) or not isinstance(max_staleness, int) or max_staleness < 0:
        raise ValueError(f"max_staleness_sessions must be an int >= 0, got {max_staleness!r}")
    if not max_jump > 0:
        raise ValueError(f"max_jump_fraction must be > 0, got {max_jump!r}")


def _session_dates(closes: pd.DataFrame, who: str) -> list[date]:
    if not isinstance(closes.index, pd.DatetimeIndex):
        raise BadMarketDataError(f"{who}: bars must be indexed by date, got {closes.index.dtype}")
    if closes.index.hasnans:
        raise BadMarketDataError(f"{who}: a bar has no date (NaT in the index)")
    days = [t.date() for t in closes.index]
    for before, after in itertools.pairwise(days):
        if after == before:
            raise BadMarketDataError(f"{who} on {after}: duplicate session date")
        if after < before:
            raise BadMarketDataError(f"{who} on {after}: comes after {before}; dates must increase")
    return days


def _is_complete(who: str, day: date, by_date: Mapping[date, SessionDay], as_of: datetime) -> bool:
    session = by_date.get(day)
    if session is None:
        raise BadMarketDataError(f"{who} on {day}: not a trading session in the broker calendar")
    if session.open > as_of:
        raise BadMarketDataError(f"{who} on {day}: bar of a session that opens after {as_of}")
    return session.close <= as_of  # False: the partial bar of the session in progress


def _check_gaps(who: str, index: pd.DatetimeIndex, done: Sequence[date]) -> None:
    have = {t.date() for t in index}
    first, last = index[0].date(), index[-1].date()
    for day in done:
        if first < day < last and day not in have:
            raise BadMarketDataError(f"{who} on {day}: session missing (no bar for any symbol)")


def _check_all_missing(closes: pd.DataFrame) -> None:
    values = closes.to_numpy()
    for col, symbol in enumerate(closes.columns):
        if np.isnan(values[:, col]).all():
            raise BadMarketDataError(f"{symbol}: no bars at all (unknown symbol or no data)")


def _check_values(closes: pd.DataFrame) -> None:
    values = closes.to_numpy()
    bad = np.argwhere(~np.isfinite(values) | (values <= 0))
    if bad.size:
        row, col = (int(v) for v in bad[0])
        value = float(values[row, col])
        problem = "no bar (symbol missing)" if np.isnan(value) else f"close {value!r}"
        raise BadMarketDataError(
            f"{closes.columns[col]} on {closes.index[row].date()}: {problem}; "
            "every close must be a positive finite price"
        )


def _check_staleness(
    who: str, last: date, done: Sequence[date], as_of: datetime, max_lag: int
) -> None:
    if not done:
        raise BadMarketDataError(f"{who}: the calendar has no session completed before {as_of}")
    behind = sum(1 for day in done if day > last)
    if behind > max_lag:
        raise BadMarketDataError(
            f"{who} on {last}: stale; the last completed session before {as_of} is "
            f"{done[-1]} ({behind} sessions later, at most {max_lag} allowed)"
        )


def _check_jumps(closes: pd.DataFrame, max_jump: float) -> None:
    values = closes.to_numpy()
    moves = np.abs(values[1:] / values[:-1] - 1.0)
    bad = np.argwhere(moves > max_jump)
    if bad.size:
        row, col = (int(v) for v in bad[0])
        new, old = float(values[row + 1, col]), float(values[row, col])
        raise BadMarketDataError(
            f"{closes.columns[col]} on {closes.index[row + 1].date()}: close "
            f"{new!r} moved {moves[row, col]:.0%} from {old!r} on "
            f"{closes.index[row].date()} (more than {max_jump:.0%}: suspicious)"
        )
