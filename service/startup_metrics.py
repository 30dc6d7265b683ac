"""The service's metrics from the moment it starts, and the halted gauge read where it is set.

A Prometheus series that does not exist yet cannot be graphed or alerted on: before this module,
``/metrics`` of a fresh ``run`` held no portfolio series at all until its first cycle, and a
restarted service forgot the last success, equity and regime it had reported. At start-up
:func:`seed_metrics` therefore

- creates every ``cycles_total`` outcome and ``orders_submitted_total`` side at 0, and the
  step histogram of every stored step (empty buckets), per portfolio;
- sets ``last_success_timestamp_seconds``, ``equity_usd`` and ``regime_probability`` from the
  status the last done cycle stored, and ``exposure_ratio`` and ``data_age_seconds`` from its
  signal (what the cycle itself sets after a cycle: the same values, read back);
- makes ``halted`` a gauge read from Redis at every scrape (:class:`HaltedProbe`). ``halt`` and
  ``resume`` are other processes that write the halt key: a gauge set only by the cycle showed 0
  after ``halt`` until the next cycle, for as long as a day. Reading the key the cycle itself
  obeys means the gauge says what the next step boundary will do. When Redis cannot be read the
  last value read is kept (the halt is still in force as far as anyone knows); before any read,
  the gauge is NaN, not a reassuring 0.

Nothing is seeded for a portfolio that never completed a cycle: an absent
``last_success_timestamp_seconds`` (no success yet) is what an alert on "no success for a day"
must see, not a made-up time.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from datetime import date, datetime
from datetime import time as dt_time
from typing import Any
from zoneinfo import ZoneInfo

from regime_trader.service.cycle_context import CycleContext
from regime_trader.service.cycle_record import Outcome, Step
from regime_trader.service.logs import get_logger
from regime_trader.service.metrics import ServiceMetrics
from regime_trader.service.shadow import ShadowStore, export_shadow_equity
from regime_trader.service.store import Store, StoreUnavailableError

__all__ = ["HaltedProbe", "seed_metrics"]

NEW_YORK = ZoneInfo("America/New_York")
log = get_logger(__name__)

# Outcomes the runner counts in cycles_total (an attempt that found nothing due is not counted).
COUNTED_OUTCOMES = tuple(o for o in Outcome if o not in (Outcome.NOT_DUE,))
SIDES = ("buy", "sell")


class HaltedProbe:
    """``1.0`` while the portfolio's halt key exists, else ``0.0``; read at every call.

    Parameters
    ----------
    store : Store
    portfolio : str
    """

    def __init__(self, store: Store, portfolio: str) -> None:
        self._store, self._portfolio = store, portfolio
        self._last = math.nan
        self._lock = threading.Lock()  # scrapes run in the HTTP server's thread pool

    def __call__(self) -> float:
        try:
            value = 0.0 if self._store.halted(self._portfolio) is None else 1.0
        except StoreUnavailableError:
            with self._lock:
                return self._last
        with self._lock:
            self._last = value
        return value


def seed_metrics(
    metrics: ServiceMetrics, store: Store, contexts: Mapping[str, CycleContext]
) -> None:
    """Give every portfolio's series a value at start-up (see the module docstring).

    Redis being down at start-up only leaves the stored values out (logged); the series that
    need no stored value are still created.
    """
    for name in contexts:
        metrics.halted.labels(portfolio=name).set_function(HaltedProbe(store, name))
        for outcome in COUNTED_OUTCOMES:
            metrics.cycles_total.labels(portfolio=name, outcome=str(outcome))
        for side in SIDES:
            metrics.orders_submitted_total.labels(portfolio=name, side=side)
        for step in (*Step, "total"):
            metrics.cycle_step_seconds.labels(portfolio=name, step=str(step))
        try:
            status = store.status(name)
            last = store.history(name, 1)
        except StoreUnavailableError as e:
            log.warning("metrics start without stored values", portfolio=name, error=str(e))
            continue
        _from_status(metrics, name, status)
        if last:
            _from_signal(metrics, name, last[0])
        _from_shadow(metrics, store, name)


def _from_shadow(metrics: ServiceMetrics, store: Store, name: str) -> None:
    """The shadow benchmarks' equity from the stored ledger (the cycle updates it after)."""
    try:
        ledger = ShadowStore(store).ledger(name)
    except (StoreUnavailableError, ValueError) as e:
        log.warning("metrics start without the shadow benchmarks", portfolio=name, error=str(e))
        return
    if ledger is not None:
        export_shadow_equity(metrics, name, ledger)


def _from_status(metrics: ServiceMetrics, name: str, status: Mapping[str, Any]) -> None:
    stamp = status.get("last_success_at")
    if isinstance(stamp, str):
        metrics.last_success_timestamp_seconds.labels(portfolio=name).set(
            datetime.fromisoformat(stamp).timestamp()
        )
    equity = _number(status.get("equity"))
    if equity is not None:
        metrics.equity_usd.labels(portfolio=name).set(equity)
    probs = status.get("regime_probs")
    if isinstance(probs, dict):
        for label, p in probs.items():
            value = _number(p)
            if value is not None:
                metrics.regime_probability.labels(portfolio=name, state=str(label)).set(value)


def _from_signal(metrics: ServiceMetrics, name: str, signal: Mapping[str, Any]) -> None:
    diagnostics = signal.get("diagnostics")
    exposure = _number(diagnostics.get("exposure")) if isinstance(diagnostics, dict) else None
    if exposure is not None:
        metrics.exposure_ratio.labels(portfolio=name).set(exposure)
    bar = signal.get("date")
    if isinstance(bar, str) and bar:
        # As the cycle does: the bar's 16:00 New York close (an early close reads a bit old).
        close = datetime.combine(date.fromisoformat(bar), dt_time(16, 0), tzinfo=NEW_YORK)
        metrics.set_last_bar_close(name, close.timestamp())


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None
