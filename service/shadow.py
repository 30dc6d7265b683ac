"""Live shadow benchmarks: what static ERC and buy-and-hold would have earned since the start.

From the portfolio's first planned cycle on, every done cycle advances two
:class:`~regime_trader.strategies.shadow.ShadowBook` s (``erc_static`` and ``buy_hold``, built as
the backtest builds its benchmarks, so buy-and-hold holds the portfolio's equity symbol) over the
bars that cycle decided on, and records the paper account's equity of that session. The dashboard
and ``/metrics`` draw the three side by side.

Timing. The books start at the close of the first planned cycle's bar with the paper account's
equity of that session (measured when the cycle planned, before it traded) and follow the
backtest's convention: a decision at a close is traded at that close and earns the next bar's
return. The paper account trades at the scheduled time of the next session instead, so the two
differ by the overnight move of each rebalance; costs are not charged (``cost_bps`` 0) and cash
earns nothing in both.

The bars. Each update reads the same bar source through the same fetch and validation as the
signal step (:mod:`regime_trader.service.signal_step`: the broker calendar, the carry rule of
thin symbols, today's partial bar dropped), up to the bar the strategy decided on, and always
from the last bar the books saw (the overlap the books need). It runs after the cycle's ``done``
transaction, and after a crash at the next wake-up that finds the session done, so it needs
nothing that lived only in the crashed process.

Never twice. The books advance by bar date: a bar at or before the last one they saw is never
applied again, and the new state, its points and the session's equity are written in one
transaction that only commits if the stored state is still the one the update started from
(``WATCH``). A crash before that commit leaves the previous state, and the next done cycle (or
wake-up) catches up; two processes racing compute the same numbers and only one commits.

Redis keys (``ns`` the store's namespace, ``p`` the portfolio):

==========================  ======  ===========================================================
``ns:p:shadow``             string  :class:`ShadowLedger` JSON: the books' states and the start
``ns:p:shadow:points``      hash    bar date -> :class:`ShadowPoint` JSON (closes and growths)
``ns:p:paper_equity``       hash    session -> :class:`PaperEquity` JSON
==========================  ======  ===========================================================

Every value is one of the frozen records below, each with its ``to_json``/``from_json`` here
only; the books' reference strategies keep their own versioned state inside
(:meth:`~regime_trader.strategies.base.Strategy.state_dict`), as the cycle's pending state does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
import redis
from redis.client import Pipeline

from regime_trader.service.cycle_context import CycleContext
from regime_trader.service.cycle_record import CycleRecord
from regime_trader.service.metrics import ServiceMetrics
from regime_trader.service.signal_step import backfill_start, fetch_checked_bars
from regime_trader.service.store import Store
from regime_trader.strategies.paired_recursion import stock_bond_pair
from regime_trader.strategies.registry import build_benchmarks
from regime_trader.strategies.shadow import ShadowBook, ShadowBookState

__all__ = [
    "SHADOW_BENCHMARKS",
    "PaperEquity",
    "ShadowBenchmarks",
    "ShadowLedger",
    "ShadowPoint",
    "ShadowStore",
    "ShadowUpdate",
    "export_shadow_equity",
]

# The benchmarks shadowed live, in the order the dashboard lists them.
SHADOW_BENCHMARKS: tuple[str, ...] = ("erc_static", "buy_hold")
# History kept from the start's warm-up bars: a year, for the realised covariance and prices.
KEPT_WARM_UP_BARS = 252
LEDGER_VERSION = 1
# Calendar days fetched before the books' last bar: it must be in the answer (the overlap),
# and a thin symbol's carried close before it too (the signal step's own margin).
_OVERLAP_DAYS = 10


# ---------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class PaperEquity:
    """The paper account's equity in one session, as its cycle planned (before it traded)."""

    session: str
    bar_date: str
    equity: Decimal

    def to_json(self) -> str:
        return json.dumps(
            {"session": self.session, "bar_date": self.bar_date, "equity": str(self.equity)}
        )

    @classmethod
    def from_json(cls, text: str) -> PaperEquity:
        d = _object(text, "paper equity")
        return cls(str(d["session"]), str(d["bar_date"]), Decimal(str(d["equity"])))


@dataclass(frozen=True)
class ShadowPoint:
    """One bar: the closes the books were fed and, after their start, each book's growth.

    ``closes`` are on the books' basis (the adjustment their first bars were served on);
    ``growth`` maps a benchmark to the value of 1 unit invested at the start (empty for the
    warm-up history kept before the start).
    """

    date: str
    closes: Mapping[str, float]
    growth: Mapping[str, float] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {"date": self.date, "closes": dict(self.closes), "growth": dict(self.growth)},
            allow_nan=False,
        )

    @classmethod
    def from_json(cls, text: str) -> ShadowPoint:
        d = _object(text, "shadow point")
        return cls(
            str(d["date"]),
            {str(k): float(v) for k, v in _object(d["closes"], "closes").items()},
            {str(k): float(v) for k, v in _object(d.get("growth", {}), "growth").items()},
        )


@dataclass(frozen=True)
class ShadowLedger:
    """The shadow benchmarks of one portfolio: where they started and each book's state.

    Attributes
    ----------
    symbols : tuple of str
    equity_symbol : str
        What buy-and-hold holds.
    start_session, start_date : str
        The first planned cycle's session and the bar it decided on (growth 1 there).
    start_equity : Decimal
        The paper account's equity in that session: each book's USD value is this times growth.
    last_session : str
        The last done session whose bars the books have seen.
    books : mapping of str to ShadowBookState
    """

    symbols: tuple[str, ...]
    equity_symbol: str
    start_session: str
    start_date: str
    start_equity: Decimal
    last_session: str
    books: Mapping[str, ShadowBookState]

    @property
    def last_date(self) -> str:
        """The last bar the books saw (they advance together)."""
        return next(iter(self.books.values())).last_date[:10]

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": LEDGER_VERSION,
                "symbols": list(self.symbols),
                "equity_symbol": self.equity_symbol,
                "start_session": self.start_session,
                "start_date": self.start_date,
                "start_equity": str(self.start_equity),
                "last_session": self.last_session,
                "books": {name: _book_json(b) for name, b in self.books.items()},
            },
            allow_nan=False,
        )

    @classmethod
    def from_json(cls, text: str) -> ShadowLedger:
        """Read :meth:`to_json`.

        Raises
        ------
        ValueError
            An unknown version or a missing field, named.
        """
        d = _object(text, "shadow ledger")
        if d.get("version") != LEDGER_VERSION:
            raise ValueError(f"shadow ledger version {d.get('version')!r} is not {LEDGER_VERSION}")
        try:
            return cls(
                symbols=tuple(str(s) for s in d["symbols"]),
                equity_symbol=str(d["equity_symbol"]),
                start_session=str(d["start_session"]),
                start_date=str(d["start_date"]),
                start_equity=Decimal(str(d["start_equity"])),
                last_session=str(d["last_session"]),
                books={str(n): _book_from(b) for n, b in _object(d["books"], "books").items()},
            )
        except KeyError as e:
            raise ValueError(f"shadow ledger: field {e} missing") from e


def _book_json(book: ShadowBookState) -> dict[str, Any]:
    return {
        "strategy": dict(book.strategy),
        "growth": book.growth,
        "held": list(book.held),
        "target": list(book.target),
        "closes": list(book.closes),
        "last_date": book.last_date,
        "cost_bps": book.cost_bps,
    }


def _book_from(data: object) -> ShadowBookState:
    d = _object(data, "shadow book")
    return ShadowBookState(
        strategy=dict(_object(d["strategy"], "shadow book strategy")),
        growth=float(d["growth"]),
        held=tuple(float(v) for v in d["held"]),
        target=tuple(float(v) for v in d["target"]),
        closes=tuple(float(v) for v in d["closes"]),
        last_date=str(d["last_date"]),
        cost_bps=float(d["cost_bps"]),
    )


def _object(value: object, what: str) -> Mapping[str, Any]:
    data = json.loads(value) if isinstance(value, str) else value
    if not isinstance(data, Mapping):
        raise ValueError(f"{what} must be a JSON object, got {type(data).__name__}")
    return data


# ---------------------------------------------------------------------------------- Redis


class ShadowStore:
    """The shadow keys of a :class:`~regime_trader.service.store.Store`'s namespace."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def key(self, portfolio: str, *parts: str) -> str:
        return self.store.key(portfolio, *parts)

    def ledger(self, portfolio: str) -> ShadowLedger | None:
        raw = self.store.call(
            "shadow read", lambda: self.store.redis.get(self.key(portfolio, "shadow"))
        )
        return None if raw is None else ShadowLedger.from_json(str(raw))

    def points(self, portfolio: str) -> list[ShadowPoint]:
        """Every stored bar, oldest first."""
        raw = self.store.call(
            "shadow points",
            lambda: self.store.redis.hgetall(self.key(portfolio, "shadow", "points")),
        )
        return sorted((ShadowPoint.from_json(v) for v in raw.values()), key=lambda p: p.date)

    def paper_equity(self, portfolio: str) -> list[PaperEquity]:
        """Every recorded session's paper equity, oldest first."""
        raw = self.store.call(
            "paper equity", lambda: self.store.redis.hgetall(self.key(portfolio, "paper_equity"))
        )
        return sorted((PaperEquity.from_json(v) for v in raw.values()), key=lambda e: e.session)

    def record_paper_equity(self, portfolio: str, equity: PaperEquity) -> None:
        """Store one session's equity (the same value again changes nothing)."""
        key = self.key(portfolio, "paper_equity")
        self.store.call(
            "paper equity write",
            lambda: self.store.redis.hset(key, equity.session, equity.to_json()),
        )

    def commit(
        self,
        portfolio: str,
        expected: ShadowLedger | None,
        ledger: ShadowLedger,
        points: list[ShadowPoint],
    ) -> bool:
        """Write ``ledger`` and its new ``points`` if the stored ledger is still ``expected``.

        Returns
        -------
        bool
            False (nothing written) if another process changed the ledger first.
        """
        key = self.key(portfolio, "shadow")
        points_key = self.key(portfolio, "shadow", "points")
        before = None if expected is None else expected.to_json()

        def attempt() -> bool:
            with self.store.redis.pipeline() as pipe:
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]
                    if pipe.get(key) != before:
                        return False
                    pipe.multi()
                    _write(pipe, key, points_key, ledger, points)
                    pipe.execute()
                    return True
                except redis.WatchError:
                    return False

        return bool(self.store.call("shadow write", attempt))


def _write(
    pipe: Pipeline, key: str, points_key: str, ledger: ShadowLedger, points: list[ShadowPoint]
) -> None:
    pipe.set(key, ledger.to_json())
    if points:
        pipe.hset(points_key, mapping={p.date: p.to_json() for p in points})


# ---------------------------------------------------------------------------------- updates


@dataclass(frozen=True)
class ShadowUpdate:
    """What one update did: ``started``, ``advanced``, ``up_to_date``, ``waiting`` or
    ``lost_race`` (another process committed first), and the bars it added."""

    status: str
    bars: int = 0
    last_date: str | None = None


class ShadowBenchmarks:
    """Advances a portfolio's shadow benchmarks after its done cycles (see the module)."""

    def __init__(self, ctx: CycleContext) -> None:
        self.ctx = ctx
        self.shadows = ShadowStore(ctx.store)

    def after_done(self, record: CycleRecord, now: datetime) -> ShadowUpdate:
        """Bring the books to the bar ``record``'s signal decided on; record its equity.

        Parameters
        ----------
        record : CycleRecord
            A done cycle.
        now : datetime
            The broker's time (today's partial bar is dropped, as in the signal step).

        Raises
        ------
        RegimeTraderError
            The bars could not be fetched or validated, or Redis failed: nothing was written
            but (perhaps) the session's equity; a later call catches up.
        ValueError
            A stored shadow record is unreadable.
        """
        name, signal = record.portfolio, record.signal
        ledger = self.shadows.ledger(name)
        if ledger is not None and ledger.last_session >= record.session:
            return ShadowUpdate("up_to_date", last_date=ledger.last_date)
        if signal is None or not signal.date:
            return ShadowUpdate("waiting")
        if record.plan is not None:
            self.shadows.record_paper_equity(
                name, PaperEquity(record.session, signal.date, record.plan.equity)
            )
        if ledger is None:
            if record.plan is None:
                return ShadowUpdate("waiting")  # they start with the first planned cycle
            return self._start(record, signal.date, record.plan.equity, now)
        if ledger.symbols != tuple(self.ctx.portfolio.symbols):
            key = self.shadows.key(name, "shadow")
            raise ValueError(
                f"shadow benchmarks of {name} trade {list(ledger.symbols)}, the configuration "
                f"says {list(self.ctx.portfolio.symbols)}: delete {key} to start them again"
            )
        return self._advance(ledger, record, signal.date, now)

    def _closes(
        self, session: str, start: date, bar_date: str, now: datetime, keep: date | None
    ) -> pd.DataFrame:
        fetched = fetch_checked_bars(self.ctx, start, date.fromisoformat(session), now, keep=keep)
        closes = fetched.bars.closes
        return closes.loc[pd.DatetimeIndex(closes.index) <= pd.Timestamp(bar_date)]

    def _start(
        self, record: CycleRecord, bar_date: str, equity: Decimal, now: datetime
    ) -> ShadowUpdate:
        p = self.ctx.portfolio
        session = date.fromisoformat(record.session)
        closes = self._closes(
            record.session, backfill_start(self.ctx, session), bar_date, now, None
        )
        built = build_benchmarks(p.symbols, p.strategy_params)
        books = {n: ShadowBook(built[n]).start(closes) for n in SHADOW_BENCHMARKS}
        pair = stock_bond_pair(
            p.symbols, p.strategy_params.get("equity_symbol"), p.strategy_params.get("bond_symbol")
        )
        start = str(pd.Timestamp(closes.index[-1]).date())
        ledger = ShadowLedger(
            symbols=tuple(p.symbols),
            equity_symbol=p.symbols[0 if pair is None else pair[0]],
            start_session=record.session,
            start_date=start,
            start_equity=equity,
            last_session=record.session,
            books={n: b.state() for n, b in books.items()},
        )
        kept = closes.iloc[-KEPT_WARM_UP_BARS:]
        points = [
            _point(t, row.tolist(), p.symbols)
            for t, row in zip(kept.index, kept.to_numpy(), strict=True)
        ]
        points[-1] = ShadowPoint(start, points[-1].closes, dict.fromkeys(SHADOW_BENCHMARKS, 1.0))
        return self._commit(None, ledger, points, "started")

    def _advance(
        self, ledger: ShadowLedger, record: CycleRecord, bar_date: str, now: datetime
    ) -> ShadowUpdate:
        last = date.fromisoformat(ledger.last_date)
        if bar_date <= ledger.last_date:  # no new bar (a repeated signal): only the session
            moved = replace(ledger, last_session=record.session)
            return self._commit(ledger, moved, [], "up_to_date")
        closes = self._closes(
            record.session, last - timedelta(days=_OVERLAP_DAYS), bar_date, now, last
        )
        books = {n: ShadowBook.from_state(s) for n, s in ledger.books.items()}
        stepped = {n: b.advance(closes) for n, b in books.items()}
        first = stepped[SHADOW_BENCHMARKS[0]]
        points = [
            ShadowPoint(
                str(step.date.date()),
                dict(zip(ledger.symbols, step.closes, strict=True)),
                {n: steps[i].growth for n, steps in stepped.items()},
            )
            for i, step in enumerate(first)
        ]
        states = {n: b.state() for n, b in books.items()}
        moved = replace(ledger, last_session=record.session, books=states)
        return self._commit(ledger, moved, points, "advanced")

    def _commit(
        self,
        expected: ShadowLedger | None,
        ledger: ShadowLedger,
        points: list[ShadowPoint],
        status: str,
    ) -> ShadowUpdate:
        name = self.ctx.portfolio.name
        if not self.shadows.commit(name, expected, ledger, points):
            return ShadowUpdate("lost_race")
        export_shadow_equity(self.ctx.metrics, name, ledger)
        return ShadowUpdate(status, bars=len(points), last_date=ledger.last_date)


def export_shadow_equity(metrics: ServiceMetrics, portfolio: str, ledger: ShadowLedger) -> None:
    """Set ``shadow_equity_usd`` of each book: the first equity times its growth.

    The cycle calls it after each update; at start-up, call it with the stored ledger
    (:meth:`ShadowStore.ledger`) so the series do not wait for the next cycle.
    """
    for benchmark, book in ledger.books.items():
        metrics.shadow_equity_usd.labels(portfolio=portfolio, benchmark=benchmark).set(
            float(ledger.start_equity) * book.growth
        )


def _point(when: Any, closes: list[float], symbols: tuple[str, ...]) -> ShadowPoint:
    return ShadowPoint(str(pd.Timestamp(when).date()), dict(zip(symbols, closes, strict=True)))
