"""Throughput of the Alpaca emulator through the real alpaca-py clients (sizing, no target).

Starts an emulator in this process on a loopback port (rate limit off, no state file), then
times, through ``TradingClient`` / ``StockHistoricalDataClient`` over real HTTP:

- baseline: ``GET /v2/clock`` (the cheapest route: auth + routing + JSON, no state);
- market orders submitted and filled while the market is open;
- daily-bar requests (3 symbols x 1 year, and 3 symbols x the full 3-year history), and the
  latter over raw httpx to separate the server's cost from the SDK's parsing;
- queued orders filled at the open by one clock advance.

Each figure is printed next to its ratio to the baseline measured in the same run, so the
numbers compare across machines. Run: ``python benchmarks/emulator.py [--n 300]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import datetime

from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.requests import MarketOrderRequest

from regime_trader.service.emulator import EmulatorConfig, start_in_thread
from regime_trader.service.emulator.admin_client import EmulatorAdmin

SYMBOLS = ["SPY", "TLT", "GLD"]


def rate(label: str, n: int, call: Callable[[int], object]) -> tuple[str, float]:
    """Return ``(label, calls per second)`` over ``n`` calls after 10 warm-up calls."""
    for i in range(10):
        call(i)
    began = time.perf_counter()
    for i in range(n):
        call(i)
    return label, n / (time.perf_counter() - began)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="calls per measurement")
    args = parser.parse_args(argv)
    config = EmulatorConfig(port=0, rate_limit_per_min=0)
    running = start_in_thread(config)
    try:
        trading = TradingClient(
            config.key_id, config.secret_key, paper=True, url_override=running.url
        )
        data = StockHistoricalDataClient(config.key_id, config.secret_key, url_override=running.url)
        admin = EmulatorAdmin(running.url)
        admin.advance(to="next_open")

        def order(i: int) -> object:
            side = OrderSide.BUY if i % 2 == 0 else OrderSide.SELL
            return trading.submit_order(
                MarketOrderRequest(symbol="SPY", qty=1, side=side, time_in_force=TimeInForce.DAY)
            )

        def bars(start: datetime) -> Callable[[int], object]:
            request = StockBarsRequest(
                symbol_or_symbols=SYMBOLS, timeframe=TimeFrame.Day, start=start
            )
            return lambda _: data.get_stock_bars(request)

        headers = {"APCA-API-KEY-ID": config.key_id, "APCA-API-SECRET-KEY": config.secret_key}
        raw_params = {"symbols": ",".join(SYMBOLS), "timeframe": "1Day", "start": "2015-01-01"}

        def raw_bars(_: int) -> object:
            # The same request without the SDK's pydantic parsing: the server's share.
            return admin.http.get("/v2/stocks/bars", params=raw_params, headers=headers).json()

        results = [
            rate("GET /v2/clock (baseline)", args.n, lambda _: trading.get_clock()),
            rate("market order, filled", args.n, order),
            rate("bars 3 sym x 1 year", args.n, bars(datetime(2023, 1, 1))),
            rate("bars 3 sym x 3 years", max(args.n // 3, 10), bars(datetime(2015, 1, 1))),
            rate("bars 3 sym x 3 years, raw JSON", max(args.n // 3, 10), raw_bars),
        ]
        admin.advance(to="next_close")
        queued = args.n
        for _ in range(queued):
            order(0)  # buys, queued while closed
        began = time.perf_counter()
        admin.advance(to="next_open")
        results.append(("queued orders filled at open", queued / (time.perf_counter() - began)))
        admin.close()
    finally:
        running.stop()
    baseline = results[0][1]
    print(f"emulator benchmark, {args.n} calls per row, one client, loopback HTTP")
    print(f"{'measurement':34s} {'per second':>12s} {'vs baseline':>12s}")
    for label, per_sec in results:
        print(f"{label:34s} {per_sec:12.1f} {per_sec / baseline:12.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
