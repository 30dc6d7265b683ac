"""HttpPolicy checks and the rate-limit pacer's arithmetic (no network: a recorded clock)."""

from __future__ import annotations

import pytest

from regime_trader.service.alpaca_http import HttpPolicy, RatePacer


class Clock:
    """A wall clock that only moves when slept on, and the sleeps it was asked for."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, secs: float) -> None:
        self.sleeps.append(secs)
        self.now += secs


def _pacer(clock: Clock, reserve: int = 5, jitter: float = 0.0) -> RatePacer:
    return RatePacer(reserve, 61.0, jitter, now=clock.time, sleep=clock.sleep)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rate_limit_wait_max_secs": -1.0}, "rate_limit_wait_max_secs must be >= 0"),
        ({"rate_limit_reserve": -1}, "rate_limit_reserve must be >= 0"),
        ({"rate_limit_reserve": 2.5}, "rate_limit_reserve must be an int"),
    ],
)
def test_rate_limit_settings_are_checked(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HttpPolicy(**change)  # type: ignore[arg-type]


def test_plenty_remaining_never_waits() -> None:
    clock = Clock(1_000.0)
    pacer = _pacer(clock)
    pacer.observe({"X-RateLimit-Remaining": "150", "X-RateLimit-Reset": "1030"})
    pacer.before_request()
    assert clock.sleeps == [] and pacer.paced == 0


def test_few_remaining_waits_until_the_reset_once() -> None:
    clock = Clock(1_000.0)
    pacer = _pacer(clock, reserve=5)
    pacer.observe({"x-ratelimit-remaining": "5", "x-ratelimit-reset": "1042"})  # any case
    pacer.before_request()
    assert clock.sleeps == [42.0] and pacer.paced == 1
    pacer.before_request()  # the next answer tells the new budget: no second wait
    assert clock.sleeps == [42.0]


def test_jitter_spreads_the_wait_within_its_bound() -> None:
    clock = Clock(1_000.0)
    pacer = _pacer(clock, reserve=5, jitter=0.5)
    pacer.observe({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1010"})
    pacer.before_request()
    (wait,) = clock.sleeps
    assert 10.0 <= wait <= 10.5


def test_a_reset_in_the_past_or_far_away_is_bounded() -> None:
    clock = Clock(1_000.0)
    pacer = _pacer(clock)
    pacer.observe({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "990"})
    pacer.before_request()
    assert clock.sleeps == []  # already reset
    pacer.observe({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "5000"})  # clock skew
    pacer.before_request()
    assert clock.sleeps == [61.0]


def test_answers_without_the_headers_change_nothing() -> None:
    clock = Clock(1_000.0)
    pacer = _pacer(clock)
    pacer.observe({"X-RateLimit-Remaining": "1", "X-RateLimit-Reset": "1005"})
    pacer.observe({})  # e.g. a proxy's answer
    pacer.observe({"X-RateLimit-Remaining": "soon", "X-RateLimit-Reset": "1005"})
    pacer.before_request()
    assert clock.sleeps == [5.0]
