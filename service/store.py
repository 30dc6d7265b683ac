"""The Redis schema: one place that knows every key, what it holds and how it is written.

Keys (``ns`` is the namespace, default ``rt``; ``p`` a portfolio; ``s`` a session YYYY-MM-DD):

==============================  ========  ==================================================
``ns:p:lock``                   string    owner token of the running cycle, with a TTL that
                                          the owner renews; only the owner may write a cycle
``ns:p:halt``                   string    JSON {reason, by, at} while the portfolio is halted
``ns:p:strategy``               hash      the strategy's state after the last done cycle: its
                                          compact fields, the bars it was last fed and their
                                          price basis under ``bar_basis``
                                          (:mod:`regime_trader.service.bar_history`) and a
                                          ``generation``; written by changes only
                                          (:mod:`regime_trader.service.saved_strategy`; a
                                          string of JSON before, still read)
``ns:p:cycle:s``                hash      the cycle state machine of one session: ``step``,
                                          ``cycle_id``, ``plan`` (write-ahead JSON), ``orders``,
                                          ``outcome``, ``error``, timestamps; its fields and
                                          their JSON are
                                          :class:`~regime_trader.service.cycle_record.
                                          CycleRecord`'s; expires after ``cycle_ttl_secs``
``ns:p:cycles``                 zset      sessions with a cycle record (score: epoch day),
                                          trimmed to ``cycles_max``
``ns:p:ledger``                 stream    order and fill events, capped at ``ledger_max``
``ns:p:history``                list      signals of done cycles, newest first, capped
``ns:p:status``                 hash      last outcome, last success, regime, weights, equity
``ns:instance:<id>``            string    heartbeat of a running process (expires)
``ns:alerts``                   stream    alerts (:mod:`~regime_trader.service.alert_channels`)
==============================  ========  ==================================================

Writes that belong to a running cycle are *fenced*: they happen in a MULTI/EXEC transaction
that WATCHes the lock and checks the caller still owns it, so a process that lost its lock (a
pause longer than the TTL, a partition) can never overwrite the cycle another replica took
over. The last write of a cycle — step ``done``, the strategy state, the history entry and the
status — is one transaction, so a crash leaves either all of it or none.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, Unpack, cast

import redis
from redis.client import Pipeline

from regime_trader.service.cycle_record import (
    CycleRecord,
    JsonObject,
    OrderRow,
    Outcome,
    RecordParts,
    SignalSummary,
    Step,
    encode_fields,
)
from regime_trader.service.exceptions import RegimeTraderError
from regime_trader.service.saved_strategy import (
    GENERATION,
    SavedStrategy,
    hash_update,
    is_state_document,
)

__all__ = ["LockLostError", "Store", "StoreUnavailableError"]

# redis-py's own annotations want an exact key union; values here are always str.
Fields = dict[Any, Any]


def _fields(values: Mapping[str, Any]) -> Fields:
    """Hash fields: strings as they are, everything else as JSON."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}


_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
# Who publishes a done cycle's alert: the first claimant, or anyone once a claim is stale (its
# claimant died between claiming and marking the alert sent).
_CLAIM_ALERT = """
if redis.call('HGET', KEYS[1], 'alerted') == '1' then return 0 end
local claim = redis.call('HGET', KEYS[1], 'alert_claim')
if claim and tonumber(claim) > tonumber(ARGV[1]) - tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'alert_claim', ARGV[1])
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class StoreUnavailableError(RegimeTraderError):
    """Redis cannot be reached or answered with an error; nothing was written."""


class LockLostError(RegimeTraderError):
    """The caller no longer owns the portfolio's lock; it must stop writing at once."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Store:
    """Typed access to the schema above.

    Parameters
    ----------
    client : redis.Redis
        A client created with ``decode_responses=True``.
    namespace : str, default "rt"
    history_max, ledger_max, cycles_max : int
        Caps of the signal history, the order ledger and the cycle index.
    cycle_ttl_secs : int, default 90 days
        Lifetime of a session's cycle record.
    """

    def __init__(
        self,
        client: redis.Redis,
        namespace: str = "rt",
        *,
        history_max: int = 500,
        ledger_max: int = 10_000,
        cycles_max: int = 400,
        cycle_ttl_secs: int = 90 * 86400,
    ) -> None:
        self.redis = client
        self.ns = namespace
        self.history_max = history_max
        self.ledger_max = ledger_max
        self.cycles_max = cycles_max
        self.cycle_ttl_secs = cycle_ttl_secs
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._claim_alert = client.register_script(_CLAIM_ALERT)

    # ------------------------------------------------------------------ keys and plumbing

    def key(self, portfolio: str, *parts: str) -> str:
        return ":".join((self.ns, portfolio, *parts))

    def call(self, what: str, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` (one Redis exchange, named ``what`` in errors) with Redis errors translated.

        Raises
        ------
        StoreUnavailableError
            If Redis cannot be reached, times out, or refuses the command.
        """
        try:
            return fn()
        except (redis.ConnectionError, redis.TimeoutError) as e:
            raise StoreUnavailableError(
                f"redis unavailable during {what}: {type(e).__name__}"
            ) from e
        except redis.ResponseError as e:
            raise StoreUnavailableError(f"redis refused {what}: {e}") from e

    def ping(self) -> bool:
        return bool(self.call("PING", self.redis.ping))

    def _fenced(
        self, portfolio: str, owner: str, what: str, write: Callable[[Pipeline], None]
    ) -> None:
        """Run ``write`` in a transaction that only commits while ``owner`` holds the lock."""
        lock = self.key(portfolio, "lock")

        def attempt() -> None:
            for _ in range(5):  # our own lock renewal also touches the WATCHed key: retry
                with self.redis.pipeline() as pipe:
                    try:
                        pipe.watch(lock)  # type: ignore[no-untyped-call]
                        if cast(str | None, pipe.get(lock)) != owner:
                            raise LockLostError(f"{portfolio}: lock lost before {what}")
                        pipe.multi()
                        write(pipe)
                        pipe.execute()
                        return
                    except redis.WatchError:
                        continue
            raise LockLostError(f"{portfolio}: lock kept changing during {what}")

        self.call(what, attempt)

    # ------------------------------------------------------------------ lock

    def acquire_lock(self, portfolio: str, owner: str, ttl_secs: float) -> bool:
        """Take the portfolio's lock if nobody holds it."""
        px = int(ttl_secs * 1000)
        ok = self.call(
            "lock", lambda: self.redis.set(self.key(portfolio, "lock"), owner, nx=True, px=px)
        )
        return bool(ok)

    def renew_lock(self, portfolio: str, owner: str, ttl_secs: float) -> bool:
        """Extend the lock's TTL; False if ``owner`` no longer holds it."""
        keys, args = [self.key(portfolio, "lock")], [owner, str(int(ttl_secs * 1000))]
        return bool(self.call("lock renewal", lambda: self._renew(keys=keys, args=args)))

    def release_lock(self, portfolio: str, owner: str) -> bool:
        keys, args = [self.key(portfolio, "lock")], [owner]
        return bool(self.call("lock release", lambda: self._release(keys=keys, args=args)))

    def lock_owner(self, portfolio: str) -> str | None:
        value = self.call("lock read", lambda: self.redis.get(self.key(portfolio, "lock")))
        return None if value is None else str(value)

    # ------------------------------------------------------------------ halt

    def halt(self, portfolio: str, reason: str, by: str) -> None:
        body = json.dumps({"reason": reason, "by": by, "at": _now()})
        self.call("halt", lambda: self.redis.set(self.key(portfolio, "halt"), body))

    def resume(self, portfolio: str) -> bool:
        return bool(self.call("resume", lambda: self.redis.delete(self.key(portfolio, "halt"))))

    def halted(self, portfolio: str) -> dict[str, Any] | None:
        raw = self.call("halt read", lambda: self.redis.get(self.key(portfolio, "halt")))
        return None if raw is None else dict(json.loads(raw))

    # ------------------------------------------------------------------ strategy state

    def saved_strategy(self, portfolio: str) -> SavedStrategy | None:
        """The stored strategy state (a hash, or the JSON string of earlier releases)."""
        key = self.key(portfolio, "strategy")
        kind = self.call("strategy read", lambda: self.redis.type(key))
        if kind == "none":
            return None
        if kind == "hash":
            fields = self.call("strategy read", lambda: self.redis.hgetall(key))
            return SavedStrategy.from_hash(fields)
        return SavedStrategy.from_string(self.call("strategy read", lambda: self.redis.get(key)))

    def strategy_state(self, portfolio: str) -> dict[str, Any] | None:
        """The stored strategy state as one JSON document, bar basis included (inspection)."""
        saved = self.saved_strategy(portfolio)
        return None if saved is None else saved.as_document()

    def _strategy_generation(self, portfolio: str) -> int | None:
        key = self.key(portfolio, "strategy")
        if self.call("strategy read", lambda: self.redis.type(key)) != "hash":
            return None
        value = self.call("strategy read", lambda: self.redis.hget(key, GENERATION))
        return None if value is None else int(value)

    # ------------------------------------------------------------------ cycles

    def cycle(self, portfolio: str, session: str) -> CycleRecord | None:
        raw = self.call(
            "cycle read", lambda: self.redis.hgetall(self.key(portfolio, "cycle", session))
        )
        return CycleRecord.from_hash(portfolio, session, raw) if raw else None

    def begin_cycle(self, portfolio: str, session: str, owner: str, cycle_id: str) -> CycleRecord:
        """Create the session's record, or count another attempt on the existing one."""
        key = self.key(portfolio, "cycle", session)
        existing = self.cycle(portfolio, session)
        day = date.fromisoformat(session).toordinal()
        index = self.key(portfolio, "cycles")
        # Sessions that fall out of the index lose their records too, so the key count stays
        # bounded even where the TTL never fires (an emulator's simulated years). The session
        # being begun is never the one dropped, even when it is older than the others.
        indexed = self.call("cycle index", lambda: self.redis.zrange(index, 0, -1))
        dropped: list[str] = []
        if existing is None:
            others = sorted((str(s) for s in indexed if str(s) != session), key=date.fromisoformat)
            dropped = others[: max(0, len(others) + 1 - self.cycles_max)]

        def write(pipe: Pipeline) -> None:
            if existing is None:
                now = _now()
                pipe.hset(
                    key,
                    mapping={
                        "cycle_id": cycle_id,
                        "step": str(Step.STARTED),
                        "started_at": now,
                        "updated_at": now,
                        "attempts": 1,
                    },
                )
                pipe.expire(key, self.cycle_ttl_secs)
                pipe.zadd(index, {session: day})
                if dropped:
                    pipe.zrem(index, *dropped)
                    pipe.delete(*(self.key(portfolio, "cycle", s) for s in dropped))
            else:
                pipe.hincrby(key, "attempts", 1)
                pipe.hset(key, "updated_at", _now())

        self._fenced(portfolio, owner, "begin cycle", write)
        record = self.cycle(portfolio, session)
        if record is None:  # written just above; gone only if deleted in between
            raise StoreUnavailableError(f"{portfolio} {session}: the cycle record vanished")
        return record

    def advance(
        self,
        portfolio: str,
        session: str,
        owner: str,
        step: Step,
        **parts: Unpack[RecordParts],
    ) -> None:
        """Move the cycle to ``step``, storing the given parts of the record with it."""
        key = self.key(portfolio, "cycle", session)
        mapping: Fields = {"step": str(step), "updated_at": _now(), **encode_fields(**parts)}

        def write(pipe: Pipeline) -> None:
            pipe.hset(key, mapping=mapping)

        self._fenced(portfolio, owner, f"step {step}", write)

    def record_orders(
        self,
        portfolio: str,
        session: str,
        owner: str,
        orders: Mapping[str, OrderRow],
        events: Sequence[Mapping[str, object]],
    ) -> None:
        """Store the cycle's order table and append the events to the ledger, atomically."""
        key = self.key(portfolio, "cycle", session)
        ledger = self.key(portfolio, "ledger")
        table: Fields = {**encode_fields(orders=orders), "updated_at": _now()}

        def write(pipe: Pipeline) -> None:
            pipe.hset(key, mapping=table)
            for event in events:
                body = json.dumps({**event, "session": session, "at": _now()})
                pipe.xadd(ledger, {"json": body}, maxlen=self.ledger_max, approximate=True)

        self._fenced(portfolio, owner, "record orders", write)

    def complete_cycle(
        self,
        portfolio: str,
        session: str,
        owner: str,
        *,
        outcome: Outcome,
        strategy_state: Mapping[str, object] | None,
        signal: SignalSummary | None,
        status: Mapping[str, object],
    ) -> None:
        """Finish the cycle: step done, strategy state, history and status in one transaction.

        ``strategy_state`` is a state document (its changes are applied to the strategy hash,
        see :mod:`~regime_trader.service.saved_strategy`) or, as before, any JSON document,
        stored whole as a string.
        """
        key = self.key(portfolio, "cycle", session)
        strategy_key = self.key(portfolio, "strategy")
        update = None
        state_json = None
        if strategy_state is not None and is_state_document(strategy_state):
            update = hash_update(strategy_state, self._strategy_generation(portfolio))
        elif strategy_state is not None:
            state_json = json.dumps(strategy_state, allow_nan=False)
        status_map = _fields(status)
        signal_json: JsonObject | None = None if signal is None else signal.to_json()

        def write(pipe: Pipeline) -> None:
            pipe.hset(
                key,
                mapping={
                    "step": str(Step.DONE),
                    "outcome": str(outcome),
                    "updated_at": _now(),
                    "signal": json.dumps(signal_json),
                },
            )
            pipe.hdel(key, "pending_state")  # now the strategy key itself
            if update is not None:
                if update.replace:
                    pipe.delete(strategy_key)
                pipe.hset(strategy_key, mapping=cast(Fields, update.mapping))
                if update.removed:
                    pipe.hdel(strategy_key, *update.removed)
            if state_json is not None:
                pipe.set(strategy_key, state_json)
            if signal_json is not None:
                history = self.key(portfolio, "history")
                pipe.lpush(history, json.dumps({"session": session, **signal_json}))
                pipe.ltrim(history, 0, self.history_max - 1)
            pipe.hset(self.key(portfolio, "status"), mapping=status_map)

        self._fenced(portfolio, owner, "complete cycle", write)

    def claim_alert(self, portfolio: str, session: str, stale_secs: float = 60.0) -> bool:
        """True for the one caller that should publish this done cycle's alert now."""
        keys, args = [self.key(portfolio, "cycle", session)], [repr(time.time()), str(stale_secs)]
        return bool(self.call("alert claim", lambda: self._claim_alert(keys=keys, args=args)))

    def mark_alerted(self, portfolio: str, session: str) -> None:
        """Remember that the done cycle's alert went out (unfenced: only a flag)."""
        key = self.key(portfolio, "cycle", session)
        self.call("alert mark", lambda: self.redis.hset(key, "alerted", "1"))

    def set_status(self, portfolio: str, status: Mapping[str, Any]) -> None:
        """Update status fields outside a cycle (e.g. the last refusal)."""
        mapping = _fields(status)
        self.call("status", lambda: self.redis.hset(self.key(portfolio, "status"), mapping=mapping))

    def status(self, portfolio: str) -> dict[str, Any]:
        raw = self.call("status read", lambda: self.redis.hgetall(self.key(portfolio, "status")))
        out: dict[str, Any] = {}
        for k, v in raw.items():
            try:
                out[k] = json.loads(v)
            except json.JSONDecodeError:
                out[k] = v
        return out

    def history(self, portfolio: str, count: int = 20) -> list[dict[str, Any]]:
        raw = self.call(
            "history", lambda: self.redis.lrange(self.key(portfolio, "history"), 0, count - 1)
        )
        return [dict(json.loads(x)) for x in raw]

    def sessions(self, portfolio: str, count: int = 50) -> list[str]:
        raw = self.call(
            "cycles", lambda: self.redis.zrange(self.key(portfolio, "cycles"), -count, -1)
        )
        return [str(x) for x in raw]

    def ledger(self, portfolio: str, count: int = 1000) -> list[dict[str, Any]]:
        raw = self.call(
            "ledger", lambda: self.redis.xrange(self.key(portfolio, "ledger"), count=count)
        )
        return [dict(json.loads(fields["json"])) for _, fields in raw]

    # ------------------------------------------------------------------ heartbeat

    def heartbeat(self, instance: str, info: Mapping[str, Any], ttl_secs: int = 60) -> None:
        body = json.dumps({**info, "at": _now(), "epoch": time.time()})
        self.call(
            "heartbeat", lambda: self.redis.set(f"{self.ns}:instance:{instance}", body, ex=ttl_secs)
        )

    def instances(self) -> list[dict[str, Any]]:
        def read() -> list[dict[str, Any]]:
            keys = sorted(self.redis.scan_iter(f"{self.ns}:instance:*", count=100))
            values = self.redis.mget(keys) if keys else []
            return [
                dict(json.loads(v), instance=k.rsplit(":", 1)[1])
                for k, v in zip(keys, values, strict=True)
                if v
            ]

        result: list[dict[str, Any]] = self.call("instances", read)
        return result
