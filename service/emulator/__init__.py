"""An Alpaca-compatible paper exchange (trading + market-data REST) on a simulated clock.

The same adapter code (alpaca-py's ``TradingClient`` and ``StockHistoricalDataClient`` with
``url_override``) runs against it offline, in tests and against Alpaca. Modules, one idea each:

================= ======================================================================
clock             simulated time over the XNYS calendar (holidays, early closes)
market            daily closes -> OHLCV bars and the price at any instant
catalogue         the default universe: real tickers, each with its own synthetic series
sources           the market from settings: the catalogue, given symbols or a replayed CSV
corporate_actions splits and cash dividends: the CSV, backward adjustment as of a date
bars              /v2/stocks/bars: adjustment as of the simulated date, IEX gaps, paging
records           orders, positions, assets, errors and their JSON round trip
exchange          the account's rules: orders, holds, flags, corporate actions at the open
exchange_state    the account as JSON (the state file's ``exchange`` part)
order_rules       which orders are taken, what a buy holds
margin            buying power of a cash, Reg T margin or pattern-day-trader account
fills             whole and partial fills; order-status scripts in motion
lifecycle         order-status scripts (which statuses the next orders go through)
inputs            request bodies and query strings -> typed requests or Alpaca-shaped errors
shapes            Alpaca's JSON for orders, positions, account, assets, clock, calendar, bars
engine            clock + market + exchange behind Alpaca's operations
parts             the state the engine's operation mixins (timeline, scenario) work on
timeline          moving the clock: opens and closes replayed in order
scenario          account flags, status scripts, duplicate code (admin knobs)
persistence       the state file, written atomically
instance_lock     one emulator per state file: the serving process's flock and address
faults            injected errors, latency and dropped connections
ratelimit         requests per minute with X-Ratelimit-* headers; per-key request statistics
app               the Starlette routes (/v2 and /admin), auth, rate limit, faults
server            uvicorn: foreground, or ``start_in_thread`` for tests and the embedded default
admin_client      the typed client of the ``/admin`` routes (the demo clock, offline
                  ``rebalance``, every test)
cli               ``regime-trader emulator`` options
================= ======================================================================
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from regime_trader.service.emulator.config import EmulatorConfig, EmulatorConfigError

if TYPE_CHECKING:
    from regime_trader.service.emulator.server import RunningEmulator, start_in_thread

__all__ = ["EmulatorConfig", "EmulatorConfigError", "RunningEmulator", "start_in_thread"]

# The server (Starlette app, engine, exchange calendar) is imported when first asked for: a
# service trading at Alpaca imports this package's admin client and state-file lock only.
_FROM_SERVER = frozenset({"RunningEmulator", "start_in_thread"})


def __getattr__(name: str) -> Any:
    if name in _FROM_SERVER:
        return getattr(importlib.import_module(f"{__name__}.server"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
