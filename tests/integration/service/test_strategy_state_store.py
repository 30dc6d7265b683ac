"""The strategy key on a real Redis: the compact hash, its changes-only writes, and the migration.

A JSON state of the previous release (``tests/unit/strategies/state_v1``, written by c42bd94) in
the string key is read, and the first completed cycle replaces it with the compact hash; later
cycles write only the fields that changed, on top of the generation they were computed from.
Each restored strategy must continue exactly as one that never stopped.
"""

from __future__ import annotations

import gzip
import json
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import redis

from regime_trader.service.bar_history import BASIS_KEY
from regime_trader.service.cycle_record import Outcome, Step
from regime_trader.service.exceptions import ReconciliationError
from regime_trader.service.saved_strategy import state_document
from regime_trader.service.store import Store
from regime_trader.strategies.base import Signal, Strategy
from regime_trader.strategies.registry import strategy_from_state
from regime_trader.strategies.synthetic import generate_market
from tests.integration.service.cycle_fixtures import unique_namespace

P = "core"
VERSION_1 = Path(__file__).parents[2] / "unit" / "strategies" / "state_v1"
BASIS = {"version": 1, "note": "the store keeps it as given"}
PRICES = generate_market(700, seed=7).prices  # the market state_v1 was recorded on


@pytest.fixture
def store(text_redis: redis.Redis) -> Store:
    return Store(text_redis, unique_namespace())


def _signals(strategy: Strategy, prices: pd.DataFrame) -> list[dict[str, Any]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        signals: list[Signal] = list(strategy.iter_update(prices))
    return [s.to_dict() for s in signals]


def _complete(store: Store, session: str, document: dict[str, Any]) -> None:
    """One cycle of ``session`` that writes ``document`` ahead, then completes."""
    assert store.acquire_lock(P, "me", 30)
    store.begin_cycle(P, session, "me", f"cycle-{session}")
    store.advance(P, session, "me", Step.SIGNAL, pending_state=document)
    record = store.cycle(P, session)
    assert record is not None and record.pending_state == document  # through the record's JSON
    store.complete_cycle(
        P,
        session,
        "me",
        outcome=Outcome.NO_TRADE,
        strategy_state=record.pending_state,
        signal=None,
        status={"last_session": session},
    )
    store.release_lock(P, "me")


def _version_1(case: str) -> dict[str, Any]:
    document = json.loads(gzip.decompress((VERSION_1 / f"{case}.json.gz").read_bytes()))
    assert document["version"] == 1
    return {**document, BASIS_KEY: BASIS}


@pytest.mark.parametrize("case", ["regime_erc-jump", "regime_erc-hmm", "erc_static"])
def test_a_version_1_json_key_migrates_to_the_compact_hash_and_continues_exactly(
    store: Store, case: str
) -> None:
    key = store.key(P, "strategy")
    store.redis.set(key, json.dumps(_version_1(case)))
    saved = store.saved_strategy(P)
    assert saved is not None and saved.generation is None and saved.basis == BASIS
    from_json = strategy_from_state(saved.state())
    expected = _signals(strategy_from_state(saved.state()), PRICES.iloc[400:])

    _complete(store, "2024-03-04", state_document(from_json.save_state(), BASIS, saved))

    assert store.redis.type(key) == "hash"
    migrated = store.saved_strategy(P)
    assert migrated is not None and migrated.generation == 1 and migrated.basis == BASIS
    assert migrated.last_date == from_json.last_date.isoformat()  # type: ignore[union-attr]
    assert _signals(strategy_from_state(migrated.state()), PRICES.iloc[400:]) == expected


def test_each_cycle_writes_only_the_fields_that_changed(store: Store) -> None:
    strategy = strategy_from_state(_version_1("regime_erc-jump"))
    _complete(store, "2024-03-04", state_document(strategy.save_state(), BASIS, None))
    key = store.key(P, "strategy")
    for day, (session, bar) in enumerate(
        zip(("2024-03-05", "2024-03-06"), (400, 401), strict=True)
    ):
        saved = store.saved_strategy(P)
        assert saved is not None and saved.generation == day + 1
        restored = strategy_from_state(saved.state())
        restored.update(PRICES.iloc[bar : bar + 1])
        strategy.update(PRICES.iloc[bar : bar + 1])
        document = state_document(restored.save_state(), BASIS, saved)
        assert document["base"] == day + 1
        assert 0 < len(document["fields"]) < len(saved.fields or {})  # changes only
        _complete(store, session, document)
        # The hash now holds the whole new state: the one of the strategy that never stopped.
        stored = store.redis.hgetall(key)
        full = state_document(strategy.save_state(), BASIS, None)["fields"]
        assert {k: v for k, v in stored.items() if k not in ("generation", BASIS_KEY)} == full
    assert store.redis.hget(key, "generation") == "3"


def test_changes_to_another_generation_are_refused_and_nothing_is_written(store: Store) -> None:
    strategy = strategy_from_state(_version_1("erc_static"))
    _complete(store, "2024-03-04", state_document(strategy.save_state(), BASIS, None))
    saved = store.saved_strategy(P)
    assert saved is not None
    strategy.update(PRICES.iloc[400:401])
    stale = {**state_document(strategy.save_state(), BASIS, saved), "base": 7}
    before = store.redis.hgetall(store.key(P, "strategy"))
    assert store.acquire_lock(P, "me", 30)
    store.begin_cycle(P, "2024-03-05", "me", "cycle-2")

    with pytest.raises(ReconciliationError, match="changes generation 7, but generation 1"):
        store.complete_cycle(
            P,
            "2024-03-05",
            "me",
            outcome=Outcome.NO_TRADE,
            strategy_state=stale,
            signal=None,
            status={},
        )

    assert store.redis.hgetall(store.key(P, "strategy")) == before


def test_a_whole_state_document_in_the_string_key_is_read_but_changes_alone_are_refused(
    store: Store,
) -> None:
    strategy = strategy_from_state(_version_1("erc_static"))
    whole = state_document(strategy.save_state(), BASIS, None)
    key = store.key(P, "strategy")
    store.redis.set(key, json.dumps(whole))
    saved = store.saved_strategy(P)
    assert saved is not None
    assert strategy_from_state(saved.state()).save_state().fields() == (
        strategy.save_state().fields()
    )
    assert store.strategy_state(P) == {**strategy.state_dict(), BASIS_KEY: BASIS}
    store.redis.set(key, json.dumps({**whole, "base": 3}))
    with pytest.raises(ReconciliationError, match="changes to generation 3, not a state"):
        store.saved_strategy(P)
