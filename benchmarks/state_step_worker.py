"""Time the signal step's state handling on a real Redis and print the figures as JSON (one line).

One step is what a daily cycle does with the strategy state around ``update``: read it from the
store and restore the strategy (*load*), feed it one bar (*update*), then build what the cycle
writes ahead into its record, write it, read the record back and complete the cycle, which moves
the state into the strategy key (*save*). The bar basis is a fixed small dict (the same in both
modes). Modes:

- ``json``: the strategy key holds one JSON document (``state_dict()`` plus the basis) and the
  record the whole document again (every release before schema 2; uses only APIs that release
  has, so :mod:`benchmarks.state_step` can run it on that code);
- ``compact``: the compact hash and a state document of the changed fields
  (:mod:`regime_trader.service.saved_strategy`).

The state is built first (not timed) by feeding ``--history`` sessions; then ``--steps`` steps
are timed, one new session each, and the medians are printed with the stored size and the bytes
written per step.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import redis

from regime_trader.service.cycle_record import Outcome, Step
from regime_trader.service.pricefile import load_prices
from regime_trader.service.store import Store
from regime_trader.strategies.base import Strategy
from regime_trader.strategies.regime_erc import RegimeERC, RegimeERCParams
from regime_trader.strategies.registry import strategy_from_state

P = "bench"
OWNER = "bench-owner"
BASIS = {"version": 1, "first_date": "2000-01-03", "dates": [], "closes": {}, "factors": {}}


class _Step:
    """One step of the JSON path: :meth:`load`, :meth:`update`, :meth:`save` in that order."""

    def __init__(self, store: Store, session: str, bar: pd.DataFrame) -> None:
        self.store, self.session, self.bar = store, session, bar
        self.strategy: Strategy | None = None

    def load(self) -> None:
        document = self.store.strategy_state(P)
        assert document is not None  # nosec B101 - stored by the setup
        state = {k: v for k, v in document.items() if k != "bar_basis"}
        self.strategy = strategy_from_state(state)

    def update(self) -> None:
        assert self.strategy is not None  # nosec B101 - loaded first
        self.strategy.update(self.bar)

    def document(self) -> dict[str, Any]:
        assert self.strategy is not None  # nosec B101 - loaded first
        return {**self.strategy.state_dict(), "bar_basis": BASIS}

    def save(self) -> int:
        """Write ahead, read the record back, complete; return the bytes written."""
        document = self.document()
        self.store.advance(P, self.session, OWNER, Step.SIGNAL, pending_state=document)
        record = self.store.cycle(P, self.session)
        assert record is not None  # nosec B101 - just written
        self.store.complete_cycle(
            P,
            self.session,
            OWNER,
            outcome=Outcome.NO_TRADE,
            strategy_state=record.pending_state,
            signal=None,
            status={"last_session": self.session},
        )
        return 2 * len(json.dumps(document))  # into the record, then into the strategy key


class _CompactStep(_Step):
    """The same step on the compact hash: a state document of the changed fields."""

    def load(self) -> None:
        saved = self.store.saved_strategy(P)  # the compact path (not in releases before it)
        assert saved is not None  # nosec B101 - stored by the setup
        self.saved = saved
        self.strategy = strategy_from_state(saved.state())

    def document(self) -> dict[str, Any]:
        from regime_trader.service.saved_strategy import state_document

        assert self.strategy is not None  # nosec B101 - loaded first
        return state_document(self.strategy.save_state(), BASIS, self.saved)


def _stored_bytes(client: redis.Redis) -> tuple[int, int]:
    """Bytes of the strategy key, and of its training window's blocks (0 for a string)."""
    key = f"rt:{P}:strategy"
    if client.type(key) == "hash":
        fields = client.hgetall(key)
        window = sum(len(v) for k, v in fields.items() if ".window.ring#" in k)
        return sum(len(v) for v in fields.values()), window
    return len(client.get(key) or ""), 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("json", "compact"), required=True)
    parser.add_argument("--prices", type=Path, required=True)
    parser.add_argument("--n-assets", type=int, required=True)
    parser.add_argument("--history", type=int, required=True)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--redis-url", required=True)
    args = parser.parse_args()
    prices = load_prices(args.prices).iloc[:, : args.n_assets]
    client = redis.Redis.from_url(args.redis_url, decode_responses=True)
    client.flushdb()
    store = Store(client)
    warnings.simplefilter("ignore")
    strategy: Strategy = RegimeERC(list(prices.columns), RegimeERCParams())
    strategy.update(prices.iloc[: args.history])
    client.set(f"rt:{P}:strategy", json.dumps({**strategy.state_dict(), "bar_basis": BASIS}))
    kind = _Step if args.mode == "json" else _CompactStep
    phases: dict[str, list[float]] = {"load": [], "update": [], "save": []}
    written: list[int] = []
    for i in range(args.steps + 1):  # the first step migrates a JSON key: not timed
        row = args.history + i
        session = str(prices.index[row].date())
        assert store.acquire_lock(P, OWNER, 60)  # nosec B101 - nobody else uses the database
        store.begin_cycle(P, session, OWNER, f"cycle-{session}")
        step = kind(store, session, prices.iloc[row : row + 1])
        times = []
        for phase in (step.load, step.update):
            began = time.perf_counter()
            phase()
            times.append(time.perf_counter() - began)
        began = time.perf_counter()
        out = step.save()
        times.append(time.perf_counter() - began)
        store.release_lock(P, OWNER)
        if i:
            for name, secs in zip(phases, times, strict=True):
                phases[name].append(secs)
            written.append(out)
    ping = []
    for _ in range(50):
        began = time.perf_counter()
        client.ping()
        ping.append(time.perf_counter() - began)
    result = {name: statistics.median(v) for name, v in phases.items()}
    stored, window = _stored_bytes(client)
    result |= {
        "stored_bytes": stored,
        "window_bytes": window,
        "written_bytes": statistics.median(written),
        "redis_round_trip": statistics.median(ping),
    }
    client.flushdb()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
