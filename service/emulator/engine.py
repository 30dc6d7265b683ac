"""The emulator's brain: clock + market + exchange, Alpaca's operations, and persistence.

Every public method takes parsed HTTP input (a JSON body or query parameters) and returns
JSON-ready data, raising :class:`~regime_trader.service.emulator.exchange.ExchangeError` for a
refusal, so the web layer (:mod:`regime_trader.service.emulator.app`) only routes. Moving the clock
replays the session opens and closes it crosses in order: queued orders fill at each open, day
orders expire and the closing equity is recorded at each close.

With a state file, the account, orders and clock are written after every change (to a
temporary file renamed over the old one, so a crash never leaves half a file) and read back at
start, so a restarted emulator carries on where it stopped.
"""

from __future__ import annotations

import copy
import time as wall_time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from regime_trader.service.emulator import shapes
from regime_trader.service.emulator.bars import BarFeed
from regime_trader.service.emulator.catalogue import thin_gaps
from regime_trader.service.emulator.config import EmulatorConfig, EmulatorConfigError
from regime_trader.service.emulator.exchange import Exchange
from regime_trader.service.emulator.exchange_state import exchange_from_json, exchange_to_json
from regime_trader.service.emulator.inputs import (
    parse_decimal,
    parse_instant,
    parse_order_body,
    parse_orders_query,
)
from regime_trader.service.emulator.lifecycle import ScriptBook
from regime_trader.service.emulator.market import Market
from regime_trader.service.emulator.persistence import read_state, write_state
from regime_trader.service.emulator.records import (
    CODE_BAD_REQUEST,
    CODE_NOT_FOUND,
    CODE_UNPROCESSABLE,
    Asset,
    ExchangeError,
    MarketView,
    Order,
)
from regime_trader.service.emulator.scenario import ScenarioControls, checked_actions
from regime_trader.service.emulator.sources import MarketSetup, load_market
from regime_trader.service.emulator.timeline import ADVANCE_TARGETS, CODE_CONFLICT, TimeControls

__all__ = ["ADVANCE_TARGETS", "CODE_CONFLICT", "STATE_VERSION", "Emulator"]

STATE_VERSION = 1


class Emulator(TimeControls, ScenarioControls):
    """One emulated Alpaca paper account on a simulated market.

    Use :meth:`create` to build one from an :class:`EmulatorConfig`.
    """

    def __init__(self, config: EmulatorConfig, setup: MarketSetup) -> None:
        self.config = config
        self.market: Market = setup.market
        self.calendar = setup.market.calendar
        self.start = setup.start
        self.fingerprint = setup.fingerprint
        unknown = sorted(config.non_fractionable - set(self.market.symbols))
        if unknown:
            raise EmulatorConfigError(f"non-fractionable symbols {unknown} are not traded")
        self.assets = {
            s: Asset(s, shapes.asset_id(s), fractionable=s not in config.non_fractionable)
            for s in self.market.symbols
        }
        self.now = self.start
        self.actions = checked_actions(config.corporate_actions, self.market)
        gaps = thin_gaps(self.market)
        for symbol, day in config.iex_missing:
            if not self.market.has(symbol):
                raise EmulatorConfigError(f"iex_missing: symbol {symbol!r} is not traded")
            gaps[symbol] = gaps.get(symbol, frozenset()) | {day}
        self.feed = BarFeed(self.market, self.actions, gaps)
        self.scripts = ScriptBook()
        self.duplicate_code = config.duplicate_code
        # Wall clock of the order scripts' "seconds" steps (replaceable in tests).
        self.wall: Callable[[], float] = wall_time.time
        self.exchange = self._new_exchange(config.cash)

    @classmethod
    def create(cls, config: EmulatorConfig) -> Emulator:
        """Build the market, then load the state file if there is one."""
        emulator = cls(config, load_market(config))
        if config.state_file is not None and config.state_file.exists():
            emulator._load(config.state_file)
        emulator._save()
        return emulator

    def sibling(self, key_id: str, secret_key: str) -> Emulator:
        """Another account on this market: its own cash, orders, positions, flags and scripts;
        the same bars, assets and corporate actions, and (while both are moved together, as
        :class:`~regime_trader.service.emulator.accounts.Accounts` does) the same clock."""
        other = copy.copy(self)  # shallow: the market, the feed and its bar cache are shared
        other.config = replace(self.config, key_id=key_id, secret_key=secret_key, accounts=1)
        other.scripts = ScriptBook()
        other.exchange = other._new_exchange(self.config.cash)
        return other

    def _new_exchange(self, cash: Decimal) -> Exchange:
        return Exchange(
            self.assets,
            cash,
            multiplier=self.config.multiplier,
            duplicate_code=self.duplicate_code,
        )

    # ------------------------------------------------------------------ views

    def view(self, at: datetime | None = None) -> MarketView:
        """Return the market as the exchange sees it at ``at`` (default: now)."""
        t = self.now if at is None else at
        market = self.market

        def price(symbol: str) -> Decimal:
            return Decimal(str(market.price_at(symbol, t)))

        def lastday(symbol: str) -> Decimal:
            return Decimal(str(market.lastday_close(symbol, t)))

        return MarketView(
            now=t,
            is_open=self.calendar.is_open(t),
            day_order_expiry=self.calendar.next_close(t),
            price=price,
            lastday_price=lastday,
        )

    # ------------------------------------------------------------------ account

    def _tick(self, polled: set[str] | None = None) -> None:
        """Move scripted orders on (polls of ``polled`` ids, and wall time)."""
        if any(o.script_final and o.is_open for o in self.exchange.orders.values()):
            self.exchange.advance_scripts(self.view(), self.wall(), polled or set())
            self._save()

    def account(self) -> dict[str, Any]:
        """``GET /v2/account``."""
        self._tick()
        return shapes.account_json(
            self.exchange, self.view(), key_id=self.config.key_id, created_at=self.start
        )

    def positions(self) -> list[dict[str, Any]]:
        """``GET /v2/positions``."""
        self._tick()
        view = self.view()
        return [
            shapes.position_json(p, self.assets[s], view, self.exchange.held_qty(s))
            for s, p in sorted(self.exchange.positions.items())
        ]

    def position(self, symbol_or_id: str) -> dict[str, Any]:
        """``GET /v2/positions/{symbol_or_asset_id}``."""
        self._tick()
        symbol = self._symbol(symbol_or_id)
        position = self.exchange.positions.get(symbol) if symbol else None
        if position is None:
            raise ExchangeError(404, CODE_NOT_FOUND, f"position not found: {symbol_or_id}")
        symbol = position.symbol
        return shapes.position_json(
            position, self.assets[symbol], self.view(), self.exchange.held_qty(symbol)
        )

    def close_position(self, symbol_or_id: str, params: Mapping[str, str]) -> dict[str, Any]:
        """``DELETE /v2/positions/{symbol_or_asset_id}`` (``qty`` or ``percentage``)."""
        symbol = self._symbol(symbol_or_id) or symbol_or_id
        qty = parse_decimal("qty", params["qty"]) if "qty" in params else None
        pct = parse_decimal("percentage", params["percentage"]) if "percentage" in params else None
        if qty is not None and pct is not None:
            raise ExchangeError(422, CODE_BAD_REQUEST, "only one of qty or percentage may be given")
        order = self.exchange.close_position(symbol, self.view(), qty=qty, percentage=pct)
        self._save()
        return shapes.order_json(order)

    def close_all_positions(self, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """``DELETE /v2/positions`` (``cancel_orders``): one result per position."""
        cancel = params.get("cancel_orders", "false").lower() == "true"
        results = self.exchange.close_all(self.view(), cancel_orders=cancel)
        self._save()
        return [
            {
                "symbol": symbol,
                "status": status,
                "body": shapes.order_json(r) if isinstance(r, Order) else r.body(),
            }
            for symbol, status, r in results
        ]

    # ------------------------------------------------------------------ orders

    def submit_order(self, body: Any) -> dict[str, Any]:
        """``POST /v2/orders``."""
        self._tick()
        request = parse_order_body(body)
        script = self.scripts.match(request.symbol)
        order = self.exchange.submit(request, self.view(), script, self.wall())
        if script is not None:
            self.scripts.consume(request.symbol)
        self._save()
        return shapes.order_json(order)

    def list_orders(self, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """``GET /v2/orders`` with status, after, until, limit, direction, symbols, side."""
        q = parse_orders_query(params)
        self._tick({o.id for o in self.exchange.orders.values() if o.script_final})
        selected = [
            o
            for o in self.exchange.orders.values()
            if (q.status == "all" or (q.status == "open") == o.is_open)
            and (q.after is None or o.submitted_at > q.after)
            and (q.until is None or o.submitted_at < q.until)
            and (q.symbols is None or o.symbol in q.symbols)
            and (q.side is None or o.side == q.side)
        ]
        selected.sort(key=lambda o: (o.submitted_at, o.seq), reverse=q.direction == "desc")
        return [shapes.order_json(o) for o in selected[: q.limit]]

    def get_order(self, order_id: str) -> dict[str, Any]:
        """``GET /v2/orders/{order_id}``."""
        self._tick({order_id})
        return shapes.order_json(self.exchange.get(order_id))

    def get_order_by_client_id(self, params: Mapping[str, str]) -> dict[str, Any]:
        """``GET /v2/orders:by_client_order_id?client_order_id=...``."""
        client_order_id = params.get("client_order_id")
        if not client_order_id:
            raise ExchangeError(422, CODE_BAD_REQUEST, "client_order_id is required")
        order_id = self.exchange.client_ids.get(client_order_id)
        self._tick({order_id} if order_id else None)
        return shapes.order_json(self.exchange.get_by_client_id(client_order_id))

    def cancel_order(self, order_id: str) -> None:
        """``DELETE /v2/orders/{order_id}``."""
        self.exchange.cancel(order_id, self.now)
        self._save()

    def cancel_all_orders(self) -> list[dict[str, Any]]:
        """``DELETE /v2/orders``: one result per cancelled order."""
        cancelled = self.exchange.cancel_all(self.now)
        self._save()
        return [{"id": o.id, "status": 200, "body": shapes.order_json(o)} for o in cancelled]

    # ------------------------------------------------------------------ assets

    def list_assets(self, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """``GET /v2/assets`` (``status``, ``asset_class`` filters)."""
        if params.get("status", "active") != "active":
            return []
        if params.get("asset_class", "us_equity") != "us_equity":
            return []
        return [shapes.asset_json(a) for a in self.assets.values()]

    def asset(self, symbol_or_id: str) -> dict[str, Any]:
        """``GET /v2/assets/{symbol_or_asset_id}``."""
        symbol = self._symbol(symbol_or_id)
        if symbol is None:
            raise ExchangeError(404, CODE_NOT_FOUND, f"asset not found for {symbol_or_id}")
        return shapes.asset_json(self.assets[symbol])

    def _symbol(self, symbol_or_id: str) -> str | None:
        if symbol_or_id in self.assets:
            return symbol_or_id
        for asset in self.assets.values():
            if asset.id == symbol_or_id:
                return asset.symbol
        return None

    # ------------------------------------------------------------------ clock

    def clock(self) -> dict[str, Any]:
        """``GET /v2/clock``."""
        return shapes.clock_json(
            self.now,
            self.calendar.is_open(self.now),
            self.calendar.next_open(self.now),
            self.calendar.next_close(self.now),
        )

    def calendar_days(self, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """``GET /v2/calendar`` (``start``, ``end`` dates)."""
        first, last = (_date_param(params, name) for name in ("start", "end"))
        return [
            shapes.calendar_json(self.calendar.session(i), self.calendar.settlement_date(i))
            for i in self.calendar.indices_between(first, last)
        ]

    # ------------------------------------------------------------------ market data

    def bars(self, params: Mapping[str, str]) -> dict[str, Any]:
        """``GET /v2/stocks/bars``: daily bars, paged, adjusted as of the simulated date."""
        return self.feed.bars(params, self.now)

    def latest_bars(self, params: Mapping[str, str]) -> dict[str, Any]:
        """``GET /v2/stocks/bars/latest`` (raw)."""
        return self.feed.latest_bars(params, self.now)

    # ------------------------------------------------------------------ admin

    def reset(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Start a fresh account (``cash``, default the configured amount) and optionally put
        the clock at ``timestamp`` (any instant with prices, earlier ones included)."""
        cash = (
            parse_decimal("cash", body["cash"], status=400)
            if body.get("cash") is not None
            else self.config.cash
        )
        now = self.now
        if body.get("timestamp") is not None:
            now = parse_instant("timestamp", str(body["timestamp"]), status=400).astimezone(UTC)
            i = self.calendar.last_opened(now)
            if i < 0 or i >= self.market.n_sessions:
                raise ExchangeError(
                    400, CODE_BAD_REQUEST, f"timestamp {now.isoformat()} has no prices"
                )
        self.duplicate_code = self.config.duplicate_code
        self.scripts = ScriptBook()
        self.exchange = self._new_exchange(cash)
        self.now = now
        self._save()
        return self.state()

    def state(self) -> dict[str, Any]:
        """The whole persisted state, as written to the state file."""
        return {
            "version": STATE_VERSION,
            "market": self.fingerprint,
            "now": self.now.isoformat(),
            "exchange": exchange_to_json(self.exchange),
            "scenario": {
                "duplicate_code": self.duplicate_code,
                "order_scripts": self.scripts.state(),
            },
        }

    # ------------------------------------------------------------------ persistence

    def _save(self) -> None:
        if self.config.state_file is not None:
            write_state(self.config.state_file, self.state())

    def _load(self, path: Path) -> None:
        try:
            data = read_state(path)
            if data.get("version") != STATE_VERSION:
                raise EmulatorConfigError(
                    f"{path}: state version {data.get('version')!r}, expected {STATE_VERSION}"
                )
            if data["market"] != self.fingerprint:
                raise EmulatorConfigError(
                    f"{path}: saved for market {data['market']}, but this emulator has "
                    f"{self.fingerprint}; start it with the same prices or remove the file"
                )
            scenario = data.get("scenario", {})
            self.duplicate_code = int(scenario.get("duplicate_code", self.config.duplicate_code))
            self.scripts = ScriptBook.from_state(scenario.get("order_scripts"))
            self.exchange = exchange_from_json(
                data["exchange"],
                self.assets,
                multiplier=self.config.multiplier,
                duplicate_code=self.duplicate_code,
            )
            self.now = datetime.fromisoformat(data["now"]).astimezone(UTC)
        except (OSError, ValueError, KeyError, TypeError) as e:
            if isinstance(e, EmulatorConfigError):
                raise
            raise EmulatorConfigError(f"{path}: unreadable state file ({e!r})") from e


def _date_param(params: Mapping[str, str], name: str) -> date | None:
    value = params.get(name)
    if not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError as e:
        raise ExchangeError(
            422, CODE_UNPROCESSABLE, f"invalid {name}: {value!r} is not YYYY-MM-DD"
        ) from e
