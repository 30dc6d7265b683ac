"""The emulator's HTTP surface: Alpaca's ``/v2`` routes and the ``/admin`` routes (Starlette).

Every ``/v2`` request goes through, in order: the rate limit (its headers go on every answer),
the injected faults, the API key check (401 unless both headers match an account's pair: see
:mod:`regime_trader.service.emulator.accounts`), then the route, on that account. Refusals are
Alpaca-shaped: ``{"code": ..., "message": ...}``.

All endpoints are ``async`` and never await while they change state, so requests are applied
one at a time on the server's event loop and need no lock.

``/admin`` is the emulator's own control surface; it has no authentication: keep the emulator
on a loopback address. Routes (JSON bodies and answers):

- ``GET /admin/health`` -> ``{"status": "ok"}``;
- ``GET /admin/clock``; ``PUT /admin/clock`` ``{"timestamp"}``; ``POST /admin/clock/advance``
  ``{"to": "next_open"|"next_close"|"next_session_open"}`` or ``{"minutes": n}``;
- ``GET|POST|DELETE /admin/faults`` (see :mod:`regime_trader.service.emulator.faults`);
- ``POST /admin/reset`` ``{"cash"?, "timestamp"?}``: fresh account, no flags, no scripts, the
  configured duplicate code; ``GET /admin/state``: the state file's content;
- ``GET|PUT /admin/account_flags`` ``{"trading_blocked"?, "account_blocked"?,
  "trade_suspended_by_user"?: bool}`` -> all three flags;
- ``GET|POST|DELETE /admin/order_scripts``: POST ``{"statuses": [...], "final", "filled_fraction"?,
  "symbol"?, "advance"?: "poll"|"seconds", "every"?, "count"?}`` -> the script with ``id``,
  ``remaining``, ``used``; GET / DELETE -> the active scripts (see
  :mod:`regime_trader.service.emulator.lifecycle`);
- ``GET|PUT /admin/scenario`` ``{"duplicate_code": 40010001|42210000}`` ->
  ``{"duplicate_code", "multiplier"}``;
- ``GET|DELETE /admin/requests`` -> ``{"limit_per_min", "accounts": {key_id: {"requests",
  "rate_limited", "max_per_60s", "first_epoch_secs", "last_epoch_secs"}}}``;
- ``GET /admin/corporate_actions`` -> ``{"actions": [{"symbol", "ex_date", "kind", "value"}],
  "applied": [{..., "at", "qty_before", "qty_after" | "cash_credited"}]}``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from regime_trader.service.emulator.accounts import Accounts
from regime_trader.service.emulator.engine import Emulator
from regime_trader.service.emulator.faults import FaultError, FaultInjector, FaultSpec
from regime_trader.service.emulator.lifecycle import OrderScript, ScriptError
from regime_trader.service.emulator.ratelimit import RateLimiter, RequestStats
from regime_trader.service.emulator.records import ExchangeError

__all__ = ["DROP_EXTENSION", "create_app"]

# ASGI scope extension set by regime_trader.service.emulator.server: {"abort": callable} closes the
# socket.
DROP_EXTENSION = "regime_trader.drop_connection"

# A /v2 route: the account the request's keys name, the request, its JSON body.
Handler = Callable[[Emulator, Request, Any], Response]


def _json(data: Any, status: int = 200) -> Response:
    return JSONResponse(data, status_code=status)


def _error(status: int, code: int, message: str) -> Response:
    return JSONResponse({"code": code, "message": message}, status_code=status)


async def _read_json(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ExchangeError(400, 40010000, "request body format is invalid") from e


async def _drop_connection(request: Request) -> None:
    extension = request.scope.get("extensions", {}).get(DROP_EXTENSION)
    if extension is None:
        raise RuntimeError("a dropped connection needs the emulator's server (server.py)")
    extension["abort"]()
    await asyncio.sleep(0.01)  # let the loop report the lost connection before we return


class _Api:
    """The ``/v2`` routes with their guards."""

    def __init__(
        self,
        accounts: Accounts,
        faults: FaultInjector,
        limiter: RateLimiter,
        stats: RequestStats | None = None,
    ) -> None:
        self.accounts = accounts
        self.faults = faults
        self.limiter = limiter
        self.stats = stats or RequestStats()

    def endpoint(self, handlers: Mapping[str, Handler]) -> Callable[[Request], Awaitable[Response]]:
        async def serve(request: Request) -> Response:
            decision = self.limiter.hit()
            allowed = decision is None or decision.allowed
            self.stats.record(request.headers.get("APCA-API-KEY-ID", ""), limited=not allowed)
            response = await self._guarded(request, handlers, allowed=allowed)
            if decision is not None:
                response.headers.update(decision.headers())
            return response

        return serve

    async def _guarded(
        self, request: Request, handlers: Mapping[str, Handler], *, allowed: bool
    ) -> Response:
        if not allowed:
            return _error(429, 42910000, "rate limit exceeded")
        action = self.faults.check(request.method, request.url.path)
        if action is not None:
            if action.latency_s > 0:
                await asyncio.sleep(action.latency_s)
            if action.drop:
                await _drop_connection(request)
                return Response(status_code=499)  # never sent: the socket is gone
            if action.status is not None and action.body is not None:
                return _json(action.body, action.status)
        account = self.accounts.authorized(
            request.headers.get("APCA-API-KEY-ID"), request.headers.get("APCA-API-SECRET-KEY")
        )
        if account is None:
            return _error(401, 40110000, "request is not authorized")
        try:
            body = await _read_json(request) if request.method in ("POST", "PUT", "PATCH") else None
            return handlers[request.method](account, request, body)
        except ExchangeError as e:
            return _json(e.body(), e.status)


def _routes(api: _Api) -> list[Route]:
    def q(request: Request) -> dict[str, str]:
        return dict(request.query_params)

    def path(request: Request, name: str) -> str:
        return str(request.path_params[name])

    def cancel(e: Emulator, request: Request) -> Response:
        e.cancel_order(path(request, "order_id"))
        return Response(status_code=204)

    table: list[tuple[str, dict[str, Handler]]] = [
        ("/v2/account", {"GET": lambda e, r, b: _json(e.account())}),
        (
            "/v2/positions",
            {
                "GET": lambda e, r, b: _json(e.positions()),
                "DELETE": lambda e, r, b: _json(e.close_all_positions(q(r)), 207),
            },
        ),
        (
            "/v2/positions/{symbol}",
            {
                "GET": lambda e, r, b: _json(e.position(path(r, "symbol"))),
                "DELETE": lambda e, r, b: _json(e.close_position(path(r, "symbol"), q(r))),
            },
        ),
        (
            "/v2/orders",
            {
                "POST": lambda e, r, b: _json(e.submit_order(b)),
                "GET": lambda e, r, b: _json(e.list_orders(q(r))),
                "DELETE": lambda e, r, b: _json(e.cancel_all_orders(), 207),
            },
        ),
        (
            "/v2/orders:by_client_order_id",
            {"GET": lambda e, r, b: _json(e.get_order_by_client_id(q(r)))},
        ),
        (
            "/v2/orders/{order_id}",
            {
                "GET": lambda e, r, b: _json(e.get_order(path(r, "order_id"))),
                "DELETE": lambda e, r, b: cancel(e, r),
            },
        ),
        ("/v2/clock", {"GET": lambda e, r, b: _json(e.clock())}),
        ("/v2/calendar", {"GET": lambda e, r, b: _json(e.calendar_days(q(r)))}),
        ("/v2/assets", {"GET": lambda e, r, b: _json(e.list_assets(q(r)))}),
        ("/v2/assets/{symbol}", {"GET": lambda e, r, b: _json(e.asset(path(r, "symbol")))}),
        ("/v2/stocks/bars", {"GET": lambda e, r, b: _json(e.bars(q(r)))}),
        ("/v2/stocks/bars/latest", {"GET": lambda e, r, b: _json(e.latest_bars(q(r)))}),
    ]

    def unknown(_: Emulator, __: Request, ___: Any) -> Response:
        return _error(404, 40410000, "endpoint not found")

    # Last: any other /v2 path is still counted and answered with the rate-limit headers.
    anything: dict[str, Handler] = dict.fromkeys(("GET", "POST", "PUT", "PATCH", "DELETE"), unknown)
    table.append(("/v2/{rest:path}", anything))
    return [Route(p, api.endpoint(h), methods=list(h)) for p, h in table]


def _admin_routes(accounts: Accounts, faults: FaultInjector, stats: RequestStats) -> list[Route]:
    e = accounts.primary

    def admin(handler: Callable[[Request, Any], Any]) -> Callable[[Request], Awaitable[Response]]:
        async def serve(request: Request) -> Response:
            try:
                body = await _read_json(request) if request.method in ("POST", "PUT") else None
                return _json(handler(request, body if body is not None else {}))
            except ExchangeError as err:
                return _json(err.body(), err.status)
            except (FaultError, ScriptError) as err:
                return _error(400, 40010000, str(err))

        return serve

    def get_clock(_: Request, __: Any) -> Any:
        return e.admin_clock()

    def put_clock(_: Request, body: Any) -> Any:
        if not isinstance(body, dict) or not isinstance(body.get("timestamp"), str):
            raise ExchangeError(400, 40010000, 'body must be {"timestamp": "<RFC 3339>"}')
        return accounts.set_clock(body["timestamp"])

    def advance(_: Request, body: Any) -> Any:
        if not isinstance(body, dict):
            raise ExchangeError(400, 40010000, "body must be a JSON object")
        return accounts.advance(body.get("to"), body.get("minutes"))

    def faults_route(request: Request, body: Any) -> Any:
        if request.method == "POST":
            return faults.add(FaultSpec.from_json(body)).to_json()
        if request.method == "DELETE":
            faults.clear()
        return [f.to_json() for f in faults.list()]

    def flags_route(request: Request, body: Any) -> Any:
        if request.method == "PUT":
            if not isinstance(body, dict):
                raise ExchangeError(400, 40010000, "body must be a JSON object of flags")
            return e.set_flags(body)
        return e.flags()

    def scripts_route(request: Request, body: Any) -> Any:
        if request.method == "POST":
            return e.add_script(OrderScript.from_json(body))
        if request.method == "DELETE":
            e.clear_scripts()
        return e.scripts.to_json()

    def scenario_route(request: Request, body: Any) -> Any:
        if request.method == "PUT":
            if not isinstance(body, dict) or set(body) != {"duplicate_code"}:
                raise ExchangeError(400, 40010000, 'body must be {"duplicate_code": <code>}')
            return e.set_duplicate_code(body["duplicate_code"])
        return e.scenario()

    def requests_route(request: Request, _: Any) -> Any:
        if request.method == "DELETE":
            stats.clear()
        return {"limit_per_min": e.config.rate_limit_per_min, "accounts": stats.to_json()}

    def reset(_: Request, body: Any) -> Any:
        if not isinstance(body, dict):
            raise ExchangeError(400, 40010000, "body must be a JSON object")
        return accounts.reset(body)

    return [
        Route("/admin/health", admin(lambda r, b: {"status": "ok"}), methods=["GET"]),
        Route("/admin/clock", admin(get_clock), methods=["GET"]),
        Route("/admin/clock", admin(put_clock), methods=["PUT"]),
        Route("/admin/clock/advance", admin(advance), methods=["POST"]),
        Route("/admin/faults", admin(faults_route), methods=["GET", "POST", "DELETE"]),
        Route("/admin/reset", admin(reset), methods=["POST"]),
        Route("/admin/state", admin(lambda r, b: e.state()), methods=["GET"]),
        Route("/admin/account_flags", admin(flags_route), methods=["GET", "PUT"]),
        Route("/admin/order_scripts", admin(scripts_route), methods=["GET", "POST", "DELETE"]),
        Route("/admin/scenario", admin(scenario_route), methods=["GET", "PUT"]),
        Route("/admin/requests", admin(requests_route), methods=["GET", "DELETE"]),
        Route(
            "/admin/corporate_actions",
            admin(lambda r, b: e.corporate_actions()),
            methods=["GET"],
        ),
    ]


async def _not_found(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    message = "endpoint not found" if status == 404 else "method not allowed"
    return _error(status, status * 100_000 + 10_000, message)


def create_app(emulator: Emulator, faults: FaultInjector | None = None) -> Starlette:
    """Return the ASGI app serving ``emulator``.

    Parameters
    ----------
    emulator : Emulator
        The state behind the routes: its first account (and the others its configuration's
        ``accounts`` asks for).
    faults : FaultInjector, optional
        Shared fault list (a new empty one by default).
    """
    faults = faults or FaultInjector()
    stats = RequestStats()
    accounts = Accounts(emulator)
    api = _Api(accounts, faults, RateLimiter(emulator.config.rate_limit_per_min), stats)
    return Starlette(
        routes=_routes(api) + _admin_routes(accounts, faults, stats),
        exception_handlers={404: _not_found, 405: _not_found},
    )
