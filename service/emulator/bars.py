"""``GET /v2/stocks/bars`` and ``/bars/latest``: daily bars as Alpaca serves them.

Raw bars come from :class:`~regime_trader.service.emulator.market.Market`. On top of them:

- ``adjustment``: prices are scaled by the backward factors of the corporate actions known on
  the emulator's current simulated date (:mod:`regime_trader.service.emulator.corporate_actions`),
  volumes by the later split ratios, so history fetched after an ex-date differs from history
  fetched before it, as on Alpaca. The default is ``raw``, as Alpaca's.
- ``feed=iex``: sessions listed as IEX gaps have no bar for that symbol (a thin symbol that
  did not trade on IEX that day); ``sip`` (the default) always has every session.
- symbols the market does not trade are absent from the answer (Alpaca answers with no bars
  for an unknown symbol, not with an error).

Raw bars of closed sessions never change and are cached.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection, Mapping
from datetime import date, datetime, time
from typing import Any

import numpy as np

from regime_trader.service.emulator import shapes
from regime_trader.service.emulator.clock import NEW_YORK, to_ns
from regime_trader.service.emulator.corporate_actions import (
    ActionKind,
    CorporateAction,
    adjustment_factors,
)
from regime_trader.service.emulator.inputs import parse_bars_query, parse_symbols
from regime_trader.service.emulator.market import Market
from regime_trader.service.emulator.records import CODE_BAD_REQUEST, ExchangeError

__all__ = ["BarFeed"]

_PRICE_KEYS = ("o", "h", "l", "c", "vw")


class BarFeed:
    """Daily bars of a market, with corporate-action adjustment and IEX gaps.

    Parameters
    ----------
    market : Market
        Raw prices.
    actions : collection of CorporateAction
        Splits and dividends of the market's symbols.
    iex_gaps : mapping of str to set of date
        Sessions with no ``feed=iex`` bar, per symbol.
    """

    def __init__(
        self,
        market: Market,
        actions: Collection[CorporateAction],
        iex_gaps: Mapping[str, frozenset[date]],
    ) -> None:
        self.market = market
        self.calendar = market.calendar
        self.iex_gaps = dict(iex_gaps)
        self._actions: dict[str, list[CorporateAction]] = {}
        for action in actions:
            self._actions.setdefault(action.symbol, []).append(action)
        self._closed: dict[tuple[str, int], dict[str, Any]] = {}
        self._dates = self.calendar.dates[: market.n_sessions]

    def factors(
        self, symbol: str, as_of: date, kinds: Collection[ActionKind]
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Return the (price, volume) factors of ``symbol`` as of ``as_of``; None if all 1."""
        actions = [a for a in self._actions.get(symbol, []) if a.ex_date <= as_of]
        if not actions or not kinds:
            return None
        return adjustment_factors(
            self._dates, self.market.closes(symbol), actions, as_of, frozenset(kinds)
        )

    def bars(self, params: Mapping[str, str], now: datetime) -> dict[str, Any]:
        """Answer ``GET /v2/stocks/bars``: daily bars, paged with ``next_page_token``."""
        q = parse_bars_query(params)
        today = datetime.combine(now.astimezone(NEW_YORK).date(), time(0), NEW_YORK)
        start = to_ns(q.start or today)
        end = to_ns(q.end or now)
        indices = list(self.market.bar_range(start, end, now))
        if q.sort == "desc":
            indices.reverse()
        symbols = [s for s in q.symbols if self.market.has(s)]
        resume = _decode_token(q.page_token) if q.page_token else None
        as_of = now.astimezone(NEW_YORK).date()
        gaps_apply = q.feed == "iex"
        page: dict[str, list[dict[str, Any]]] = {}
        taken = 0
        next_token: str | None = None
        for symbol in symbols:
            if resume is not None and symbol < resume[0]:
                continue
            factors = self.factors(symbol, as_of, q.adjustment)
            gaps = self.iex_gaps.get(symbol, frozenset()) if gaps_apply else frozenset()
            for i in indices:
                day = self.calendar.dates[i]
                if resume is not None and symbol == resume[0] and _before(day, resume[1], q.sort):
                    continue
                if day in gaps:
                    continue
                if taken == q.limit:
                    next_token = _encode_token(symbol, day)
                    break
                page.setdefault(symbol, []).append(self._bar_json(symbol, i, now, factors))
                taken += 1
            if next_token is not None:
                break
        return {"bars": page, "next_page_token": next_token}

    def _bar_json(
        self,
        symbol: str,
        i: int,
        now: datetime,
        factors: tuple[np.ndarray, np.ndarray] | None,
    ) -> dict[str, Any]:
        if int(self.calendar.closes_ns[i]) > to_ns(now):
            raw = shapes.bar_json(self.market.bar(symbol, i, now))
        else:
            key = (symbol, i)
            cached = self._closed.get(key)
            if cached is None:
                cached = self._closed[key] = shapes.bar_json(self.market.bar(symbol, i, now))
            raw = cached
        if factors is None:
            return raw
        price, volume = float(factors[0][i]), float(factors[1][i])
        if price == 1.0 and volume == 1.0:
            return raw
        adjusted = dict(raw)
        for name in _PRICE_KEYS:
            # Alpaca's adjusted prices carry 4 decimals.
            adjusted[name] = round(float(raw[name]) * price, 4)
        adjusted["v"] = round(int(raw["v"]) * volume)
        return adjusted

    def latest_bars(self, params: Mapping[str, str], now: datetime) -> dict[str, Any]:
        """Answer ``GET /v2/stocks/bars/latest``: the bar of the latest session opened (partial
        while it is open), raw; the emulator has daily bars only, where Alpaca answers with a
        minute bar."""
        symbols = [s for s in parse_symbols(params) if self.market.has(s)]
        return {"bars": {s: shapes.bar_json(self.market.latest_bar(s, now)) for s in symbols}}


def _before(day: date, mark: date, sort: str) -> bool:
    """Whether ``day`` comes before ``mark`` in the ``sort`` order."""
    return day < mark if sort == "asc" else day > mark


def _encode_token(symbol: str, day: date) -> str:
    return base64.urlsafe_b64encode(f"{symbol}|{day.isoformat()}".encode()).decode()


def _decode_token(token: str) -> tuple[str, date]:
    try:
        symbol, day = base64.urlsafe_b64decode(token.encode()).decode().split("|")
        return symbol, date.fromisoformat(day)
    except (ValueError, binascii.Error, UnicodeDecodeError) as e:
        raise ExchangeError(400, CODE_BAD_REQUEST, f"invalid page_token: {token!r}") from e
