"""Record the emulator's Alpaca JSON into ``alpaca_responses.json`` for the parsing tests.

Run from the repository root: ``python -m tests.unit.service.record_alpaca_responses``. The
emulator is deterministic (fixed seed and start date), so only order ids change between runs.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from regime_trader.service.emulator import EmulatorConfig, start_in_thread

NY = ZoneInfo("America/New_York")
OUT = Path(__file__).with_name("alpaca_responses.json")
KEY_ID, SECRET_KEY = "record-key-id", "record-secret-key"


def _order(symbol: str, qty: str, client_order_id: str | None = None) -> dict[str, Any]:
    body = {"symbol": symbol, "qty": qty, "side": "buy", "type": "market", "time_in_force": "day"}
    return body if client_order_id is None else {**body, "client_order_id": client_order_id}


def record() -> dict[str, Any]:
    """Drive an emulator through a small scenario and return its answers by name."""
    config = EmulatorConfig(
        port=0,
        key_id=KEY_ID,
        secret_key=SECRET_KEY,
        rate_limit_per_min=0,
        non_fractionable=frozenset({"GLD"}),
    )
    headers = {"APCA-API-KEY-ID": KEY_ID, "APCA-API-SECRET-KEY": SECRET_KEY}
    with start_in_thread(config) as emu, httpx.Client(base_url=emu.url, headers=headers) as h:
        out: dict[str, Any] = {"_about": __doc__.splitlines()[0]}
        out["clock_closed"] = h.get("/v2/clock").json()
        out["calendar"] = h.get(
            "/v2/calendar", params={"start": "2024-01-10", "end": "2024-01-17"}
        ).json()
        h.put(
            "/admin/clock", json={"timestamp": datetime(2024, 1, 3, 11, 0, tzinfo=NY).isoformat()}
        )
        out["clock_open"] = h.get("/v2/clock").json()
        out["order_filled"] = h.post(
            "/v2/orders", json=_order("SPY", "10", "p1-20240103-SPY-buy-1")
        ).json()
        h.post("/v2/orders", json=_order("TLT", "2.5"))
        out["error_duplicate"] = h.post(
            "/v2/orders", json=_order("SPY", "1", "p1-20240103-SPY-buy-1")
        ).json()
        out["error_buying_power"] = h.post("/v2/orders", json=_order("SPY", "100000")).json()
        out["account"] = h.get("/v2/account").json()
        out["positions"] = h.get("/v2/positions").json()
        out["asset_fractionable"] = h.get("/v2/assets/SPY").json()
        out["asset_whole_shares"] = h.get("/v2/assets/GLD").json()
        h.put(
            "/admin/clock", json={"timestamp": datetime(2024, 1, 3, 17, 0, tzinfo=NY).isoformat()}
        )
        out["order_accepted"] = h.post(
            "/v2/orders", json=_order("GLD", "3", "p1-20240104-GLD-buy-1")
        ).json()
        out["orders"] = h.get("/v2/orders", params={"status": "all", "direction": "asc"}).json()
        out["error_not_found"] = h.get(
            "/v2/orders:by_client_order_id", params={"client_order_id": "nope"}
        ).json()
        out["error_unauthorized"] = httpx.get(emu.url + "/v2/account").json()
        params = {
            "symbols": "SPY,TLT",
            "timeframe": "1Day",
            "start": "2023-12-27",
            "limit": "6",
            "adjustment": "all",
            "feed": "iex",
        }
        out["bars_page_1"] = first = h.get("/v2/stocks/bars", params=params).json()
        params["page_token"] = first["next_page_token"]
        out["bars_page_2"] = h.get("/v2/stocks/bars", params=params).json()
        return out


if __name__ == "__main__":
    OUT.write_text(json.dumps(record(), indent=1) + "\n")
    print(f"wrote {OUT}")
