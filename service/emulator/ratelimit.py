"""Alpaca's request rate limit: N requests per minute of wall time, per account.

Fixed one-minute windows aligned to the wall clock. Every answer carries
``X-Ratelimit-Limit``, ``X-Ratelimit-Remaining`` and ``X-Ratelimit-Reset`` (Unix seconds when
the window ends); past the limit the request is refused with 429. The limit is on by default
(200 per minute, Alpaca's figure) in every configuration that does not turn it off.

:class:`RequestStats` measures what a client did, per API key: requests, 429s answered, and the
most requests in any 60 s sliding window (a deque of request times), which is the figure to
compare with the 200/min limit (a fixed window can hide a burst across its edge).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["AccountStats", "RateDecision", "RateLimiter", "RequestStats"]

WINDOW_SECS = 60.0


@dataclass(frozen=True)
class RateDecision:
    """Whether one request may proceed, and the headers to send."""

    allowed: bool
    limit: int
    remaining: int
    reset_epoch_secs: int

    def headers(self) -> dict[str, str]:
        """The ``X-Ratelimit-*`` headers."""
        return {
            "X-Ratelimit-Limit": str(self.limit),
            "X-Ratelimit-Remaining": str(self.remaining),
            "X-Ratelimit-Reset": str(self.reset_epoch_secs),
        }


class RateLimiter:
    """Count requests in fixed windows.

    Parameters
    ----------
    per_min : int
        Requests allowed per window; 0 disables the limit (every request allowed, no headers).
    now : callable
        Wall clock in Unix seconds (injectable for tests).
    """

    def __init__(self, per_min: int, now: Callable[[], float] = time.time) -> None:
        if per_min < 0:
            raise ValueError(f"per_min must be >= 0, got {per_min}")
        self.per_min = per_min
        self._now = now
        self._window = -1
        self._count = 0

    def hit(self) -> RateDecision | None:
        """Count one request; None when the limit is off."""
        if self.per_min == 0:
            return None
        window = math.floor(self._now() / WINDOW_SECS)
        if window != self._window:
            self._window, self._count = window, 0
        self._count += 1
        allowed = self._count <= self.per_min
        return RateDecision(
            allowed=allowed,
            limit=self.per_min,
            remaining=max(self.per_min - self._count, 0),
            reset_epoch_secs=int((window + 1) * WINDOW_SECS),
        )


@dataclass
class AccountStats:
    """Requests of one API key."""

    requests: int = 0
    rate_limited: int = 0
    max_per_60s: int = 0
    first_epoch_secs: float | None = None
    last_epoch_secs: float | None = None
    _recent: deque[float] = field(default_factory=deque, repr=False)

    def to_json(self) -> dict[str, int | float | None]:
        """``{"requests", "rate_limited", "max_per_60s", "first_epoch_secs",
        "last_epoch_secs"}``."""
        return {
            "requests": self.requests,
            "rate_limited": self.rate_limited,
            "max_per_60s": self.max_per_60s,
            "first_epoch_secs": self.first_epoch_secs,
            "last_epoch_secs": self.last_epoch_secs,
        }


class RequestStats:
    """Per-key request counts and the maximum over any 60 s sliding window.

    Parameters
    ----------
    now : callable
        Wall clock in Unix seconds (injectable for tests).
    """

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self._now = now
        self.accounts: dict[str, AccountStats] = {}

    def record(self, key_id: str, *, limited: bool) -> None:
        """Count one ``/v2`` request of ``key_id`` (``limited``: it was answered 429)."""
        t = self._now()
        stats = self.accounts.setdefault(key_id, AccountStats())
        stats.requests += 1
        stats.rate_limited += int(limited)
        stats.first_epoch_secs = t if stats.first_epoch_secs is None else stats.first_epoch_secs
        stats.last_epoch_secs = t
        recent = stats._recent
        recent.append(t)
        while t - recent[0] >= WINDOW_SECS:
            recent.popleft()
        stats.max_per_60s = max(stats.max_per_60s, len(recent))

    def clear(self) -> None:
        """Forget every count."""
        self.accounts.clear()

    def to_json(self) -> dict[str, dict[str, int | float | None]]:
        """Per key: :meth:`AccountStats.to_json`."""
        return {key: stats.to_json() for key, stats in sorted(self.accounts.items())}
