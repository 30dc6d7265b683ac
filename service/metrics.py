"""Prometheus metrics of the trading service, in a registry of their own.

Each :class:`ServiceMetrics` owns a ``CollectorRegistry`` instead of using prometheus-client's
global one, so several instances (one per test, one per app) never collide on metric names and
``/metrics`` shows exactly this service's series. Every name starts with ``regime_trader_``.

What to alert on, for the operator reading this:

* ``time() - regime_trader_last_success_timestamp_seconds`` above a day and a half: cycles stopped.
* ``regime_trader_halted == 1``: someone (or a guard) halted the portfolio.
* ``regime_trader_data_age_seconds`` above a few days: the bars are stale.
* ``rate(regime_trader_orders_failed_total[1d]) > 0``: the broker refused orders.
* ``increase(regime_trader_broker_rate_limited_total[1h]) > 0``: the account's request budget
  ran out (another program or too many replicas on one account).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = ["PREFIX", "STEP_BUCKETS_SECS", "ServiceMetrics", "package_version"]

PREFIX = "regime_trader_"

# From a 1 ms Redis read to a 120 s bounded wait for fills; roughly x2.5 per bucket.
STEP_BUCKETS_SECS: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
)

_PORTFOLIO = ("portfolio",)

# The exposition's HELP line of each metric, by name without PREFIX.
_HELP: dict[str, str] = {
    "cycle_step_seconds": "Duration of one step of the daily cycle, in seconds.",
    "cycles_total": "Cycles finished, by outcome (rebalanced, no_trade, skipped, failed, halted).",
    "last_success_timestamp_seconds": "Unix time of the last cycle that completed without error.",
    "orders_submitted_total": "Orders accepted by the broker.",
    "orders_failed_total": "Orders refused by the broker or lost, by reason.",
    "regime_probability": "Filtered (causal) probability of each market regime.",
    "equity_usd": "Account equity in USD.",
    "exposure_ratio": "Gross invested value divided by equity (0 = all cash).",
    "data_age_seconds": "Seconds since the close of the last bar the strategy has seen.",
    "halted": "1 while the portfolio is halted, else 0.",
    "broker_rate_limited_total": (
        "HTTP 429 answers from the broker or market data (each is waited out, then retried)."
    ),
    "cycle_due_timestamp_seconds": (
        "Unix time the last scheduled cycle became due (a session's schedule time)."
    ),
    "shadow_equity_usd": (
        "What a shadow benchmark started with the paper account's first equity holds, USD."
    ),
    "shadow_update_failures_total": (
        "Done cycles after which the shadow benchmarks could not be advanced."
    ),
    "build_info": "Always 1; the label version is the installed regime-trader's version.",
}


def package_version() -> str:
    """The installed ``regime-trader`` distribution's version ("unknown" from a bare checkout)."""
    try:
        return version("regime-trader")
    except PackageNotFoundError:
        return "unknown"


class ServiceMetrics:
    """The service's metrics; the cycle updates them, ``GET /metrics`` renders them.

    Parameters
    ----------
    registry : CollectorRegistry, optional
        Where the metrics are registered; a new private registry by default.

    Attributes
    ----------
    cycle_step_seconds : Histogram
        Duration of each cycle step, seconds; labels ``portfolio``, ``step``.
    cycles_total : Counter
        Finished cycles; labels ``portfolio``, ``outcome`` (the alert kind, e.g. ``rebalanced``).
    last_success_timestamp_seconds : Gauge
        Unix time of the last cycle that completed without error; label ``portfolio``.
    orders_submitted_total : Counter
        Orders accepted by the broker; labels ``portfolio``, ``side``.
    orders_failed_total : Counter
        Orders refused or lost; labels ``portfolio``, ``reason``.
    regime_probability : Gauge
        Filtered probability of each regime; labels ``portfolio``, ``state``.
    equity_usd : Gauge
        Account equity, USD; label ``portfolio``.
    exposure_ratio : Gauge
        Gross invested value over equity (0 = all cash); label ``portfolio``.
    data_age_seconds : Gauge
        Seconds since the close of the last bar; label ``portfolio``. Prefer
        :meth:`set_last_bar_close`, which keeps the age growing between cycles.
    halted : Gauge
        1 while the portfolio is halted, else 0; label ``portfolio``.
    broker_rate_limited_total : Counter
        HTTP 429 answers (Alpaca's 200 requests/min per account); label ``portfolio``.
    cycle_due_timestamp_seconds : Gauge
        Unix time the last scheduled cycle became due (a trading session's schedule time, as
        the broker's clock and calendar say); label ``portfolio``. A due time later than the
        last success by hours means a trading day's cycle has not run (holidays and weekends
        never make a due time, unlike a rule on the wall clock).
    shadow_equity_usd : Gauge
        What a shadow benchmark (:mod:`regime_trader.service.shadow`) would hold now, USD,
        from the paper account's equity of the first session; labels ``portfolio``,
        ``benchmark`` (``erc_static``, ``buy_hold``).
    shadow_update_failures_total : Counter
        Done cycles after which the shadow benchmarks could not be advanced (they catch up at
        the next one); label ``portfolio``.
    build_info : Gauge
        Always 1; label ``version``, the installed package's version.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.cycle_step_seconds = Histogram(
            PREFIX + "cycle_step_seconds",
            _HELP["cycle_step_seconds"],
            ["portfolio", "step"],
            buckets=STEP_BUCKETS_SECS,
            registry=self.registry,
        )
        self.cycles_total = self._counter("cycles_total", "portfolio", "outcome")
        self.last_success_timestamp_seconds = self._gauge("last_success_timestamp_seconds")
        self.orders_submitted_total = self._counter("orders_submitted_total", "portfolio", "side")
        self.orders_failed_total = self._counter("orders_failed_total", "portfolio", "reason")
        self.regime_probability = self._gauge("regime_probability", "portfolio", "state")
        self.equity_usd = self._gauge("equity_usd")
        self.exposure_ratio = self._gauge("exposure_ratio")
        self.data_age_seconds = self._gauge("data_age_seconds")
        self.halted = self._gauge("halted")
        self.broker_rate_limited_total = self._counter("broker_rate_limited_total")
        self.cycle_due_timestamp_seconds = self._gauge("cycle_due_timestamp_seconds")
        self.shadow_equity_usd = self._gauge("shadow_equity_usd", "portfolio", "benchmark")
        self.shadow_update_failures_total = self._counter("shadow_update_failures_total")
        self.build_info = self._gauge("build_info", "version")
        self.build_info.labels(version=package_version()).set(1)

    def _counter(self, name: str, *labels: str) -> Counter:
        """A counter ``PREFIX + name`` with its ``_HELP`` text; labels ``portfolio`` by default."""
        return Counter(PREFIX + name, _HELP[name], labels or _PORTFOLIO, registry=self.registry)

    def _gauge(self, name: str, *labels: str) -> Gauge:
        """A gauge ``PREFIX + name`` with its ``_HELP`` text; labels ``portfolio`` by default."""
        return Gauge(PREFIX + name, _HELP[name], labels or _PORTFOLIO, registry=self.registry)

    @contextmanager
    def time_step(self, portfolio: str, step: str) -> Iterator[None]:
        """Observe the block's duration in ``cycle_step_seconds`` (also when it raises).

        Parameters
        ----------
        portfolio : str
            Portfolio label.
        step : str
            Step label, e.g. ``"fetch_bars"``.
        """
        start = time.perf_counter()
        try:
            yield
        finally:
            self.cycle_step_seconds.labels(portfolio=portfolio, step=step).observe(
                time.perf_counter() - start
            )

    def set_last_bar_close(self, portfolio: str, close_unix_secs: float) -> None:
        """Make ``data_age_seconds`` report the age of this bar's close at every scrape.

        A value set once per cycle would freeze at the cycle's time and hide the very staleness
        it exists to show (a cycle that stopped running); a callback keeps it growing.

        Parameters
        ----------
        portfolio : str
            Portfolio label.
        close_unix_secs : float
            Unix time of the last bar's close, seconds.
        """
        self.data_age_seconds.labels(portfolio=portfolio).set_function(
            lambda: time.time() - close_unix_secs
        )

    def render(self) -> tuple[bytes, str]:
        """Return the exposition text and its content type, for ``GET /metrics``.

        Returns
        -------
        body : bytes
            Prometheus text format of every metric in this registry.
        content_type : str
            prometheus-client's ``CONTENT_TYPE_LATEST`` (Prometheus text format).
        """
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
