"""The emulator's brain: clock + market + exchange, Alpaca's operations, and persistence.

Every public method takes parsed HTTP input (a JSON body or query parameters) and returns
JSON-ready data, raising :class:`~service.emulator.exchange.ExchangeError` for a refusal, so
the web layer (:mod:`service.emulator.app`) only routes. Moving the clock replays the session
opens and closes it crosses in order: queued orders fill at each open, day orders expire and
the closing equity is recorded at each close.

With a state file, the account, orders and clock are written after every change (to a
temporary file renamed over the old one, so a crash never leaves half a file) and read back at
start, so a restarted emulator carries on where it stopped.
"""

from __future__ import annotations

import time as wall_time
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from service.emulator import shapes
from service.emulator.bars import BarFeed
from service.emulator.catalogue import thin_gaps
from service.emulator.clock import CalendarError
from service.emulator.config import EmulatorConfig, EmulatorConfigError
from service.emulator.corporate_actions import CorporateAction
from service.emulator.exchange import (
    CODE_BAD_REQUEST,
    CODE_NOT_FOUND,
    CODE_UNPROCESSABLE,
    FLAGS,
    Asset,
    Exchange,
    ExchangeError,
    MarketView,
    Order,
)
from service.emulator.inputs import (
    parse_decimal,
    parse_instant,
    parse_order_body,
    parse_orders_query,
)
from service.emulator.lifecycle import OrderScript, ScriptBook
from service.emulator.market import Market
from service.emulator.persistence import read_state, write_state
from service.emulator.sources import MarketSetup, load_market

__all__ = ["ADVANCE_TARGETS", "STATE_VERSION", "Emulator"]

STATE_VERSION = 1
ADVANCE_TARGETS = ("next_open", "next_close", "next_session_open")
CODE_CONFLICT = 40910000


class Emulator:
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
        self.actions = _checked_actions(config.corporate_actions, self.market)
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

    def admin_clock(self) -> dict[str, Any]:
        """The clock plus what the admin needs: the session and the reachable range."""
        i = self.calendar.last_opened(self.now)
        return {
            **self.clock(),
            "timestamp_utc": shapes.utc_text(self.now),
            "session": self.calendar.dates[i].isoformat() if i >= 0 else None,
            "last_priced_session": self.calendar.dates[self.market.n_sessions - 1].isoformat(),
        }

    def set_clock(self, value: str) -> dict[str, Any]:
        """Move the clock to an instant (forward only), replaying the opens and closes."""
        self._move_to(parse_instant("timestamp", value))
        return self.admin_clock()

    def advance(self, to: str | None, minutes: Any) -> dict[str, Any]:
        """Advance to ``next_open``, ``next_close``, ``next_session_open`` or by ``minutes``."""
        if (to is None) == (minutes is None):
            raise ExchangeError(
                400, CODE_BAD_REQUEST, f"give exactly one of 'to' ({ADVANCE_TARGETS}) or 'minutes'"
            )
        try:
            if to == "next_open":
                target = self.calendar.next_open(self.now)
            elif to == "next_close":
                target = self.calendar.next_close(self.now)
            elif to == "next_session_open":
                target = self.calendar.next_session_open(self.now)
            elif to is not None:
                raise ExchangeError(
                    400, CODE_BAD_REQUEST, f"unknown target {to!r}; one of {ADVANCE_TARGETS}"
                )
            else:
                if isinstance(minutes, bool) or not isinstance(minutes, int | float) or minutes < 0:
                    raise ExchangeError(
                        400, CODE_BAD_REQUEST, f"minutes must be a number >= 0, got {minutes!r}"
                    )
                target = self.now + timedelta(minutes=minutes)
        except CalendarError as e:
            raise ExchangeError(409, CODE_CONFLICT, str(e)) from e
        self._move_to(target)
        return self.admin_clock()

    def _move_to(self, target: datetime) -> None:
        target = target.astimezone(UTC)
        if target < self.now:
            raise ExchangeError(
                409,
                CODE_CONFLICT,
                f"the clock only moves forward (now {self.now.isoformat()}, asked "
                f"{target.isoformat()}); POST /admin/reset to start again",
            )
        if self.calendar.last_opened(target) >= self.market.n_sessions:
            last = self.calendar.session(self.market.n_sessions - 1)
            raise ExchangeError(
                409,
                CODE_CONFLICT,
                f"no prices after session {last.date}: the clock cannot reach {target.isoformat()}",
            )
        for at, kind, i in self.calendar.events_between(self.now, target):
            view = self.view(at)
            if kind == "open":
                day = self.calendar.dates[i]
                for action in self.actions:
                    if action.ex_date == day:
                        self.exchange.apply_action(action, at)
                self.exchange.on_open(view)
            else:
                self.exchange.on_close(view)
        self.now = target
        self._save()

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
            "exchange": self.exchange.to_json(),
            "scenario": {
                "duplicate_code": self.duplicate_code,
                "order_scripts": self.scripts.state(),
            },
        }

    # ------------------------------------------------------------------ scenarios

    def flags(self) -> dict[str, bool]:
        """The account flags that refuse new orders."""
        return dict(self.exchange.flags)

    def set_flags(self, body: Mapping[str, Any]) -> dict[str, bool]:
        """Set some of ``trading_blocked``, ``account_blocked``, ``trade_suspended_by_user``."""
        unknown = sorted(set(body) - set(FLAGS))
        if unknown:
            raise ExchangeError(400, CODE_BAD_REQUEST, f"unknown flags {unknown}; {sorted(FLAGS)}")
        for name, value in body.items():
            if not isinstance(value, bool):
                raise ExchangeError(400, CODE_BAD_REQUEST, f"{name} must be true or false")
        self.exchange.flags.update(body)
        self._save()
        return self.flags()

    def add_script(self, script: OrderScript) -> dict[str, Any]:
        """Activate an order-status script for the next orders."""
        result = self.scripts.add(script)
        self._save()
        return result

    def clear_scripts(self) -> None:
        """Remove the active scripts (orders already scripted keep theirs)."""
        self.scripts.clear()
        self._save()

    def scenario(self) -> dict[str, Any]:
        """Duplicate code and the ids of the flags, for ``GET /admin/scenario``."""
        return {"duplicate_code": self.duplicate_code, "multiplier": self.config.multiplier}

    def set_duplicate_code(self, code: Any) -> dict[str, Any]:
        """Choose the code answered to a duplicate client order id (40010001 or 42210000)."""
        from service.emulator.config import DUPLICATE_CODES

        if code not in DUPLICATE_CODES:
            raise ExchangeError(
                400, CODE_BAD_REQUEST, f"duplicate_code must be one of {DUPLICATE_CODES}"
            )
        self.duplicate_code = self.exchange.duplicate_code = int(code)
        self._save()
        return self.scenario()

    def corporate_actions(self) -> dict[str, Any]:
        """The configured actions and what was applied to the account."""
        return {
            "actions": [a.to_json() for a in self.actions],
            "applied": list(self.exchange.corporate_log),
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
            self.exchange = Exchange.from_json(
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


def _checked_actions(
    actions: tuple[CorporateAction, ...], market: Market
) -> tuple[CorporateAction, ...]:
    """Refuse actions of unknown symbols or on dates that are not priced sessions."""
    priced = set(market.calendar.dates[: market.n_sessions])
    for action in actions:
        if not market.has(action.symbol):
            raise EmulatorConfigError(
                f"corporate action {action.kind.value} on {action.ex_date}: symbol "
                f"{action.symbol!r} is not traded (symbols: {list(market.symbols)})"
            )
        if action.ex_date not in priced or action.ex_date == market.calendar.dates[0]:
            raise EmulatorConfigError(
                f"corporate action {action.kind.value} of {action.symbol}: ex_date "
                f"{action.ex_date} is not a priced session after the first"
            )
    return tuple(sorted(actions, key=lambda a: (a.ex_date, a.symbol, a.kind.value)))


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
