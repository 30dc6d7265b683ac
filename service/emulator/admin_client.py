"""A typed client of the emulator's ``/admin`` routes (:mod:`regime_trader.service.emulator.app`).

The one way anything outside the emulator drives it: the offline ``rebalance`` and the demo
clock of ``regime-trader run`` move the embedded emulator's clock with it, and every test
(unit, integration, end-to-end, reliability, the soak) moves clocks, injects faults and reads
request statistics through it. A refused admin request raises :class:`EmulatorAdminError` with
the emulator's answer, so a test that drives the emulator wrongly fails at the call that did.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from datetime import time as dt_time
from decimal import Decimal
from types import TracebackType
from typing import Any, Literal

import httpx

from regime_trader.service.emulator.faults import FaultSpec
from regime_trader.service.emulator.ratelimit import AccountStats

__all__ = [
    "ActiveFault",
    "AdminClock",
    "AdvanceTarget",
    "EmulatorAdmin",
    "EmulatorAdminError",
    "RequestReport",
    "minutes_after_open",
]

AdvanceTarget = Literal["next_open", "next_close", "next_session_open"]
# uvicorn closes a keep-alive connection after 5 s idle; a request sent on it just then fails
# with "Server disconnected without sending a response". A client that pauses between admin
# calls (a test pacing sessions, the demo clock) drops idle connections well before the server.
KEEPALIVE_EXPIRY_SECS = 2.0


class EmulatorAdminError(RuntimeError):
    """The emulator refused an admin request: HTTP ``status`` and its JSON ``body``."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {body}")
        self.status = status
        self.body = body


def minutes_after_open(schedule: dt_time) -> float:
    """Minutes from the 09:30 open to one minute past ``schedule`` (so a cycle is due then)."""
    return max(schedule.hour * 60 + schedule.minute - (9 * 60 + 30) + 1, 0)


@dataclass(frozen=True)
class AdminClock:
    """``GET /admin/clock``: Alpaca's clock plus the simulated session and the priced range.

    ``session`` is the last session that opened at or before now (YYYY-MM-DD; None before the
    first one), ``last_priced_session`` the last session the market has prices for.
    """

    timestamp: datetime
    is_open: bool
    next_open: datetime
    next_close: datetime
    session: str | None
    last_priced_session: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AdminClock:
        session = data.get("session")
        return cls(
            timestamp=datetime.fromisoformat(str(data["timestamp"])),
            is_open=bool(data["is_open"]),
            next_open=datetime.fromisoformat(str(data["next_open"])),
            next_close=datetime.fromisoformat(str(data["next_close"])),
            session=None if session is None else str(session),
            last_priced_session=str(data["last_priced_session"]),
        )


@dataclass(frozen=True)
class ActiveFault:
    """An injected fault as the emulator reports it: its spec, uses left and hits so far."""

    id: int
    spec: FaultSpec
    remaining: int | None
    hits: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ActiveFault:
        spec = {k: v for k, v in data.items() if k not in ("id", "remaining", "hits")}
        remaining = data.get("remaining")
        return cls(
            id=int(data["id"]),
            spec=FaultSpec(**spec),
            remaining=None if remaining is None else int(remaining),
            hits=int(data["hits"]),
        )


@dataclass(frozen=True)
class RequestReport:
    """``GET /admin/requests``: the ``/v2`` limit and what each API key sent."""

    limit_per_min: int
    accounts: Mapping[str, AccountStats]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RequestReport:
        accounts = {str(k): AccountStats(**v) for k, v in dict(data["accounts"]).items()}
        return cls(limit_per_min=int(data["limit_per_min"]), accounts=accounts)


class EmulatorAdmin:
    """The ``/admin`` surface of the emulator at ``url``.

    Parameters
    ----------
    url : str
        The emulator's base URL (``http://127.0.0.1:PORT``).
    timeout_secs : float
        Connect and read timeout of one admin request.
    """

    def __init__(self, url: str, *, timeout_secs: float = 10.0) -> None:
        self.url = url
        self.http = httpx.Client(
            base_url=url,
            timeout=timeout_secs,
            limits=httpx.Limits(keepalive_expiry=KEEPALIVE_EXPIRY_SECS),
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> EmulatorAdmin:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def call(self, method: str, path: str, body: object = None) -> Any:
        """One admin request; its JSON answer.

        Raises
        ------
        EmulatorAdminError
            The emulator answered anything but 200.
        """
        response = self.http.request(method, path, json=body)
        if response.status_code != 200:
            raise EmulatorAdminError(method, path, response.status_code, response.text)
        return response.json()

    def healthy(self) -> bool:
        """Whether the emulator answers ``/admin/health`` now."""
        try:
            return self.http.get("/admin/health", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    # ------------------------------------------------------------------ clock

    def clock(self) -> AdminClock:
        return AdminClock.from_json(self.call("GET", "/admin/clock"))

    def set_clock(self, when: datetime) -> AdminClock:
        """Move the clock to ``when`` (forward only), replaying the opens and closes between."""
        return AdminClock.from_json(
            self.call("PUT", "/admin/clock", {"timestamp": when.isoformat()})
        )

    def advance(
        self, *, to: AdvanceTarget | None = None, minutes: float | None = None
    ) -> AdminClock:
        """Advance to a calendar event (``to``) or by ``minutes``; give exactly one."""
        body: dict[str, object] = {"to": to} if minutes is None else {"minutes": minutes}
        return AdminClock.from_json(self.call("POST", "/admin/clock/advance", body))

    def open_session(self, minutes_after_open: float = 31) -> str:
        """Move to the next open (from a closed market or from inside the last session), then
        ``minutes_after_open`` on; return that session's date."""
        self.advance(to="next_open")
        return self._session(self.advance(minutes=minutes_after_open))

    def next_session(self, minutes_after_open: float = 31) -> str:
        """Move to the next session's open, then ``minutes_after_open`` on; return its date."""
        self.advance(to="next_session_open")
        return self._session(self.advance(minutes=minutes_after_open))

    def to_schedule(self, minutes_after_open: float) -> None:
        """If the market is closed, go to the next open and ``minutes_after_open`` on."""
        if not self.clock().is_open:
            self.open_session(minutes_after_open)

    @staticmethod
    def _session(clock: AdminClock) -> str:
        if clock.session is None:  # the clock just moved into a session: never the case
            raise EmulatorAdminError("POST", "/admin/clock/advance", 200, "no session")
        return clock.session

    # ------------------------------------------------------------------ account and scenario

    def reset(self, *, timestamp: datetime | None = None, cash: Decimal | None = None) -> None:
        """A fresh account (``cash``, default the configured one), no flags, no scripts, the
        configured duplicate code; the clock at ``timestamp`` if given."""
        body: dict[str, str] = {}
        if timestamp is not None:
            body["timestamp"] = timestamp.isoformat()
        if cash is not None:
            body["cash"] = str(cash)
        self.call("POST", "/admin/reset", body)

    def state(self) -> dict[str, Any]:
        """The whole persisted state, as the state file holds it."""
        return dict(self.call("GET", "/admin/state"))

    def account_flags(self) -> dict[str, bool]:
        return dict(self.call("GET", "/admin/account_flags"))

    def set_account_flags(self, **flags: bool) -> dict[str, bool]:
        """Set some of ``trading_blocked``, ``account_blocked``, ``trade_suspended_by_user``."""
        return dict(self.call("PUT", "/admin/account_flags", flags))

    def scenario(self) -> dict[str, int]:
        """``{"duplicate_code", "multiplier"}``."""
        return dict(self.call("GET", "/admin/scenario"))

    def set_duplicate_code(self, code: int) -> dict[str, int]:
        """The code answered to a duplicate client order id (40010001 or 42210000)."""
        return dict(self.call("PUT", "/admin/scenario", {"duplicate_code": code}))

    def order_scripts(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "/admin/order_scripts"))

    def add_order_script(self, **script: object) -> dict[str, Any]:
        """Drive the next orders through ``statuses`` to ``final`` (see ``lifecycle``)."""
        return dict(self.call("POST", "/admin/order_scripts", script))

    def clear_order_scripts(self) -> None:
        self.call("DELETE", "/admin/order_scripts")

    def corporate_actions(self) -> dict[str, Any]:
        """``{"actions": [...], "applied": [...]}``."""
        return dict(self.call("GET", "/admin/corporate_actions"))

    # ------------------------------------------------------------------ faults and requests

    def add_fault(self, **spec: Any) -> ActiveFault:
        """Inject a fault (the fields of :class:`FaultSpec`, checked here first)."""
        checked = FaultSpec(**spec)
        return ActiveFault.from_json(self.call("POST", "/admin/faults", asdict(checked)))

    def faults(self) -> list[ActiveFault]:
        return [ActiveFault.from_json(f) for f in self.call("GET", "/admin/faults")]

    def clear_faults(self) -> None:
        self.call("DELETE", "/admin/faults")

    def hits(self, fault_id: int) -> int | None:
        """Requests a fault matched; None once a counted fault was used up (and removed)."""
        return next((f.hits for f in self.faults() if f.id == fault_id), None)

    def count_requests(self, method: str, path: str) -> int:
        """Start counting requests: a 1 ms latency fault whose :meth:`hits` are the count."""
        return self.add_fault(path=path, method=method, latency_ms=1).id

    def requests(self) -> RequestReport:
        """Request statistics per API key: counts, 429s, the busiest 60 s."""
        return RequestReport.from_json(self.call("GET", "/admin/requests"))

    def clear_requests(self) -> None:
        self.call("DELETE", "/admin/requests")
