"""State written by the previous version (841cfcc, before the ``regime_trader`` namespace) is read.

``state_841cfcc/`` holds every Redis key and the embedded emulator's state file after the
previous version ran ``rebalance`` offline six times, then ``halt``, then a ``rebalance`` the halt
refused (``record_state_841cfcc.py`` wrote them). Loaded into a real Redis with that emulator
state, today's code must read it all: ``status`` shows the halt, the last session and the regime;
the regime strategy restores from its stored state; and, once resumed, the next cycle continues the
session the halt refused -- with the strategy's own state and bar basis, not a rebuild -- and
never trades a session already done.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from regime_trader.service.alerts import Alert
from regime_trader.service.cycle_record import CycleRecord, Outcome, Step
from regime_trader.service.store import Store
from regime_trader.strategies.registry import strategy_from_state
from tests.support.processes import RedisLike, clean_env, private_redis, run_cli
from tests.support.redis_dump import KeyDump, load_keys

STATE = Path(__file__).with_name("state_841cfcc")
DUMP: dict[str, KeyDump] = json.loads((STATE / "redis.json").read_text(encoding="utf-8"))
P = "default"
DONE = ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-08", "2024-01-09"]
HALTED = "2024-01-10"  # refused by the halt: a record at step "started", not finished
HALT_REASON = "migration fixture: operator halt"


@dataclass
class Migrated:
    """A Redis holding the previous version's keys, and a data directory with its emulator."""

    server: RedisLike
    client: redis.Redis
    env: dict[str, str]

    def cli(self, *args: str) -> str:
        done = run_cli(*args, env=self.env, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    def record(self, session: str) -> CycleRecord:
        record = Store(self.client).cycle(P, session)
        assert record is not None, f"no cycle record for {session}"
        return record

    def orders(self) -> list[dict[str, Any]]:
        state = json.loads((Path(self.env["RT_DATA_DIR"]) / "emulator.json").read_text("utf-8"))
        return list(state["exchange"]["orders"])


PORTFOLIO_841CFCC = """\
[[portfolio]]
name = "default"
symbols = ["SPY", "TLT", "GLD"]
profile = "baseline"
[portfolio.strategy_params.policy]
persistence_multiplier = true
"""


@pytest.fixture
def migrated(tmp_path: Path) -> Iterator[Migrated]:
    (tmp_path / "data").mkdir()
    shutil.copyfile(STATE / "emulator.json", tmp_path / "data" / "emulator.json")
    with private_redis(tmp_path) as server:
        client = server.client()
        load_keys(client, DUMP)
        # The strategy 841cfcc traded: regime_erc, when the persistence multiplier was always
        # applied. Configured as it was, the state continues; anything else would rebuild it.
        config = tmp_path / "portfolio.toml"
        config.write_text(PORTFOLIO_841CFCC, encoding="utf-8")
        env = clean_env() | {
            "REDIS_URL": server.url,
            "RT_DATA_DIR": str(tmp_path / "data"),
            "RT_CONFIG_FILE": str(config),
        }
        yield Migrated(server, client, env)
        client.close()


def _hash(key: str) -> dict[str, str]:
    value: dict[str, str] = DUMP[key]["value"]
    return value


def test_status_reads_the_previous_versions_halt_last_session_and_regime(
    migrated: Migrated,
) -> None:
    doc = json.loads(migrated.cli("status"))

    default = doc["portfolios"][P]
    stored = _hash(f"rt:{P}:status")
    assert default["halted"]["reason"] == HALT_REASON
    assert (default["last_session"], default["last_attempt_session"]) == (DONE[-1], HALTED)
    assert (default["last_outcome"], default["regime"]) == ("halted", stored["regime"])
    assert default["target_weights"] == json.loads(stored["target_weights"])
    assert default["recent_sessions"] == [*DONE[-4:], HALTED]
    assert doc["checks"]["redis"] is True and doc["checks"]["broker"] is True


def test_every_cycle_hash_of_the_previous_version_reads_as_a_typed_record(
    migrated: Migrated,
) -> None:
    for session in DONE:
        record = migrated.record(session)
        assert (record.step, record.alerted) == (Step.DONE, True)
        assert record.outcome in (Outcome.REBALANCED, Outcome.NO_TRADE)
        assert record.signal is not None and record.signal.ready
        assert record.to_hash() == _hash(f"rt:{P}:cycle:{session}")
    first = migrated.record(DONE[0])
    assert first.outcome is Outcome.REBALANCED and len(first.orders) == 3
    halted = migrated.record(HALTED)
    assert (halted.step, halted.error) == (Step.STARTED, f"halted: {HALT_REASON}")


def test_the_regime_strategy_restores_from_the_previous_versions_state(
    migrated: Migrated,
) -> None:
    stored = Store(migrated.client).strategy_state(P)
    assert stored is not None

    assert stored["version"] == 1  # the whole state as one JSON document, window columns in it
    restored = strategy_from_state(stored).state_dict()

    assert type(strategy_from_state(stored)).__name__ == "RegimeERC"
    # The fitted model and every running estimate come back exactly.
    for key in ("last_date", "symbols", "ewma", "regime_cov", "last_erc"):
        assert restored[key] == stored[key], key
    tracker, old = restored["tracker"], stored["tracker"]
    for key in set(old) - {"X", "equity"}:
        assert tracker[key] == old[key], key
    # Version 2 keeps the training window as its ring: the same rows, oldest first.
    window = tracker["window"]
    rows = window["ring"][window["start"] :] + window["ring"][: window["start"]]
    width = window["n_features"]
    assert [r[:width] for r in rows] == old["X"]
    assert [r[width] for r in rows] == old["equity"]
    # The asset returns seeded the regime covariances at the first fit and are never read
    # again: the migrated window no longer carries them.
    assert len(stored["returns"]) == len(rows) and all(len(r) == width + 1 for r in rows)
    # Parameters added since keep, for an old state, the values it was saved with.
    assert _subset(stored["params"], json.loads(json.dumps(restored["params"])))


def _subset(old: Any, new: Any) -> bool:
    """Whether every key of ``old`` is in ``new`` with the same value (lists as tuples too)."""
    if isinstance(old, dict):
        return isinstance(new, dict) and all(
            k in new and _subset(v, new[k]) for k, v in old.items()
        )
    return bool(old == new)


def test_after_resume_the_next_cycle_continues_and_no_done_session_trades_again(
    migrated: Migrated,
) -> None:
    orders_before = migrated.orders()
    halted = migrated.record(HALTED)

    assert "resumed" in migrated.cli("resume")
    continued = migrated.cli("rebalance")
    following = migrated.cli("rebalance")

    # The session the halt refused is the one that runs now: the same record, a second attempt.
    assert continued.startswith(f"{P} {HALTED}: "), continued
    record = migrated.record(HALTED)
    assert (record.step, record.cycle_id, record.attempts) == (Step.DONE, halted.cycle_id, 2)
    assert record.outcome in (Outcome.REBALANCED, Outcome.NO_TRADE)
    # Fed from the stored strategy on its stored bar basis: nothing rebuilt or re-adjusted.
    assert record.signal is not None and record.signal.ready
    assert (record.signal.date, record.signal.data_notes) == ("2024-01-09", ())
    # Then the next simulated session, not any session again.
    assert following.startswith(f"{P} 2024-01-11: "), following
    assert migrated.record("2024-01-11").step is Step.DONE
    # The strategy moved on by exactly the two sessions' bars (01-09, then 01-10).
    state = Store(migrated.client).strategy_state(P)
    assert state is not None and state["last_date"].startswith("2024-01-10")
    # The first cycle replaced the JSON string with the compact hash, the second changed it.
    key = f"rt:{P}:strategy"
    assert migrated.client.type(key) == "hash"
    assert migrated.client.hget(key, "generation") == "2"
    assert json.loads(migrated.client.hget(key, "header"))["tree"]["version"] == 2
    for session in DONE:
        assert migrated.record(session).to_hash() == _hash(f"rt:{P}:cycle:{session}")
    orders = migrated.orders()
    assert orders[: len(orders_before)] == orders_before
    done_tags = {"-" + s.replace("-", "") + "-" for s in DONE}
    assert not [
        o for o in orders[len(orders_before) :] if any(t in o["client_order_id"] for t in done_tags)
    ]
    # The alerts of both versions read as one stream: the old ones as written, then the new.
    lines = migrated.cli("alerts", "--count", "50", "--json").splitlines()
    shown = [Alert.from_json(line) for line in lines if line.strip()]
    old = [Alert.from_json(fields["json"]) for _, fields in DUMP["rt:alerts"]["value"]]
    assert shown[: len(old)] == old
    new = {(a.session, a.kind) for a in shown[len(old) :]}
    assert (HALTED, str(record.outcome)) in new
    assert new & {("2024-01-11", "rebalanced"), ("2024-01-11", "no_trade")}
