"""One request budget per Alpaca account, shared by every replica through Redis.

Alpaca allows 200 requests per minute per account, whichever process sends them. The
``X-RateLimit-*`` headers (see :mod:`regime_trader.service.alpaca_http`) keep each process clear of
429s, but they describe fixed one-minute windows: three replicas pacing on them alone sent 358
requests within one sliding minute against the emulator (the end of one window plus the start of the
next; ``tests/reliability/test_rate_budget.py``). A moving-window limiter on the project's
Redis (the ``limits`` package) holds all the replicas of one account to ``requests_per_min`` in
*any* 60 s, before a request leaves. The headers and the 429 handling stay as the backstop for
requests this budget cannot see (another program on the same key).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable

import redis
from limits import RateLimitItemPerMinute
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

__all__ = ["SharedRequestBudget", "account_tag"]

_log = logging.getLogger(__name__)
_NAMESPACE = "rt-alpaca-requests"
_RECHECK_SECS = 1.0  # re-ask the budget at least this often while waiting
_UNREACHABLE_PAUSE_SECS = 30.0  # after a Redis error, stop asking for this long


def account_tag(key_id: str) -> str:
    """A stable name for an account that does not reveal its key id."""
    return hashlib.sha256(key_id.encode()).hexdigest()[:16]


class SharedRequestBudget:
    """Block until the account may send one more request within its per-minute budget.

    Parameters
    ----------
    client : redis.Redis
        The service's Redis (the budget's moving window is a sorted set in it).
    account : str
        The account's tag (:func:`account_tag`): replicas with the same tag share one budget.
    requests_per_min : int
        Requests allowed in any 60 s, >= 1 (Alpaca's limit is 200; keep a margin).
    max_wait_secs : float, default 120
        Longest wait for one request; past it the request goes anyway (the headers and the
        429 handling still apply) and a warning is logged.
    """

    def __init__(
        self,
        client: redis.Redis,
        account: str,
        requests_per_min: int,
        *,
        max_wait_secs: float = 120.0,
        now: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if isinstance(requests_per_min, bool) or requests_per_min < 1:
            raise ValueError(f"requests_per_min must be an int >= 1, got {requests_per_min!r}")
        if not max_wait_secs >= 0:
            raise ValueError(f"max_wait_secs must be >= 0, got {max_wait_secs!r}")
        storage = RedisStorage("redis://", connection_pool=client.connection_pool)
        self._limiter = MovingWindowRateLimiter(storage)
        self._item = RateLimitItemPerMinute(requests_per_min)
        self.account = account
        self.max_wait_secs = max_wait_secs
        self._now, self._sleep = now, sleep
        self.waited_secs = 0.0  # total, for logs and tests
        self._unreachable_until = float("-inf")

    def acquire(self) -> None:
        """Take one request from the budget, waiting for the moving window to allow it.

        A Redis that cannot be reached does not stop trading here: the request goes, paced
        by the broker's headers only (the cycle itself needs Redis and refuses on its own), and
        the budget is not asked again for a while, so each request does not pay Redis's
        connection timeout.
        """
        began = self._now()
        if began < self._unreachable_until:
            return
        try:
            while not self._limiter.hit(self._item, _NAMESPACE, self.account):
                stats = self._limiter.get_window_stats(self._item, _NAMESPACE, self.account)
                waited = self._now() - began
                if waited >= self.max_wait_secs:
                    _log.warning("request budget still spent after %.0f s: sending", waited)
                    return
                ahead = max(0.05, stats.reset_time - self._now())
                self._sleep(min(ahead, _RECHECK_SECS, self.max_wait_secs - waited))
        except redis.RedisError as e:
            self._unreachable_until = self._now() + _UNREACHABLE_PAUSE_SECS
            _log.warning(
                "request budget unavailable (%s): pacing on headers only", type(e).__name__
            )
        finally:
            self.waited_secs += self._now() - began
