"""Fault injection: make chosen requests fail, stall or lose their connection.

A fault matches requests by method and path (a glob such as ``/v2/orders*``) and does any of:
wait ``latency_ms`` first; answer with an error ``status`` and an Alpaca-shaped body; drop the
connection without any response. It applies to the next ``count`` matching requests (None:
until cleared), each with ``probability`` drawn from a generator seeded by ``seed``, so a
flaky-network scenario replays identically.
"""

from __future__ import annotations

import fnmatch
import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from regime_trader.service.emulator.records import use_once

__all__ = ["Fault", "FaultAction", "FaultError", "FaultInjector", "FaultSpec"]

_MESSAGES = {
    429: "too many requests",
    500: "internal server error",
    502: "bad gateway",
    503: "service unavailable",
    504: "gateway timeout",
}


class FaultError(ValueError):
    """A fault specification is invalid; the message names the field."""


@dataclass(frozen=True)
class FaultSpec:
    """What to inject and where (see the module docstring)."""

    path: str
    method: str = "*"
    status: int | None = None
    code: int | None = None
    message: str | None = None
    latency_ms: int = 0
    drop: bool = False
    count: int | None = None
    probability: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.path.startswith("/"):
            raise FaultError(f"path must start with '/', got {self.path!r}")
        if self.status is not None and not 400 <= self.status <= 599:
            raise FaultError(f"status must be an HTTP error in 400..599, got {self.status}")
        if self.latency_ms < 0:
            raise FaultError(f"latency_ms must be >= 0, got {self.latency_ms}")
        if self.count is not None and self.count < 1:
            raise FaultError(f"count must be >= 1 (or null for always), got {self.count}")
        if not 0.0 <= self.probability <= 1.0:
            raise FaultError(f"probability must be in [0, 1], got {self.probability}")
        if self.status is None and not self.drop and self.latency_ms == 0:
            raise FaultError("a fault needs a status, drop=true or latency_ms > 0")
        if self.status is not None and self.drop:
            raise FaultError("status and drop exclude each other")

    @classmethod
    def from_json(cls, body: Any) -> FaultSpec:
        """Parse a fault from the JSON body of ``POST /admin/faults``."""
        if not isinstance(body, Mapping):
            raise FaultError("the body must be a JSON object")
        allowed = set(cls.__dataclass_fields__)
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise FaultError(f"unknown fields {unknown}; allowed: {sorted(allowed)}")
        if "path" not in body:
            raise FaultError("path is required")
        try:
            return cls(**body)
        except TypeError as e:
            raise FaultError(str(e)) from e


@dataclass(frozen=True)
class FaultAction:
    """What to do with one request."""

    latency_s: float
    drop: bool
    status: int | None
    body: dict[str, Any] | None


@dataclass
class Fault:
    """An active fault and how often it fired."""

    id: int
    spec: FaultSpec
    remaining: int | None
    hits: int = 0
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def to_json(self) -> dict[str, Any]:
        """Describe the fault."""
        return {"id": self.id, **asdict(self.spec), "remaining": self.remaining, "hits": self.hits}


class FaultInjector:
    """The active faults, checked in the order they were added."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._next_id = 1

    def add(self, spec: FaultSpec) -> Fault:
        """Activate a fault."""
        # Seeded so a fault schedule replays identically: test scheduling, not security.
        rng = random.Random(spec.seed)  # nosec B311
        fault = Fault(self._next_id, spec, spec.count, rng=rng)
        self._next_id += 1
        self._faults.append(fault)
        return fault

    def clear(self) -> None:
        """Remove every fault."""
        self._faults.clear()

    def list(self) -> list[Fault]:
        """Return the active faults."""
        return list(self._faults)

    def check(self, method: str, path: str) -> FaultAction | None:
        """Return the action for a request, or None to serve it normally."""
        for fault in self._faults:
            spec = fault.spec
            if spec.method not in ("*", method.upper()) or not fnmatch.fnmatchcase(path, spec.path):
                continue
            if spec.probability < 1.0 and fault.rng.random() >= spec.probability:
                continue
            fault.hits += 1
            use_once(fault, self._faults)
            body = None
            if spec.status is not None:
                body = {
                    "code": spec.code if spec.code is not None else spec.status * 100_000 + 10_000,
                    "message": spec.message or _MESSAGES.get(spec.status, "injected fault"),
                }
            return FaultAction(spec.latency_ms / 1000.0, spec.drop, spec.status, body)
        return None
