"""An Alpaca-compatible paper exchange (trading + market-data REST) on a simulated clock.

The same adapter code (alpaca-py's ``TradingClient`` and ``StockHistoricalDataClient`` with
``url_override``) runs against it offline, in tests and against Alpaca. Modules, one idea each:

========== ==============================================================================
clock      simulated time over the XNYS calendar (holidays, early closes)
market     daily closes -> OHLCV bars and the price at any instant
sources    the market from settings: seeded synthetic closes or a replayed CSV
exchange   cash account, market orders, positions: a pure, JSON-serialisable state machine
inputs     request bodies and query strings -> typed requests or Alpaca-shaped errors
shapes     Alpaca's JSON for orders, positions, account, assets, clock, calendar, bars
engine     clock + market + exchange behind Alpaca's operations; the state file
faults     injected errors, latency and dropped connections
ratelimit  requests per minute with X-Ratelimit-* headers
app        the Starlette routes (/v2 and /admin), auth, rate limit, faults
server     uvicorn: foreground, or ``start_in_thread`` for tests and the embedded default
cli        ``regime-trader emulator`` options
========== ==============================================================================
"""

from __future__ import annotations

from service.emulator.config import EmulatorConfig, EmulatorConfigError
from service.emulator.server import RunningEmulator, start_in_thread

__all__ = ["EmulatorConfig", "EmulatorConfigError", "RunningEmulator", "start_in_thread"]
