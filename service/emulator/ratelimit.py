"""Alpaca's request rate limit: N requests per minute of wall time, per account.

Fixed one-minute windows aligned to the wall clock. Every answer carries
``X-Ratelimit-Limit``, ``X-Ratelimit-Remaining`` and ``X-Ratelimit-Reset`` (Unix seconds when
the window ends); past the limit the request is refused with 429.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RateDecision", "RateLimiter"]

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
