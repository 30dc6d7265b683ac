"""What one portfolio's cycle talks to: configuration, broker, bars, store, alerts, metrics."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from regime_trader.service.alert_channels import AlertPublisher
from regime_trader.service.broker import AlpacaBroker
from regime_trader.service.marketdata import BarSource
from regime_trader.service.metrics import ServiceMetrics
from regime_trader.service.orders import PlanningSettings
from regime_trader.service.portfolio_config import PortfolioConfig
from regime_trader.service.store import Store

__all__ = ["CycleContext", "planning_settings"]


@dataclass
class CycleContext:
    """Everything one portfolio's cycle talks to."""

    portfolio: PortfolioConfig
    broker: AlpacaBroker
    bars: BarSource
    store: Store
    alerts: AlertPublisher
    metrics: ServiceMetrics
    # Seconds between two fill-wait rounds (one order-list request each); the service takes
    # RT_FILL_POLL_INTERVAL_SECS (>= 1). Tests may go lower against the local emulator.
    poll_interval_secs: float = 2.0

    def __post_init__(self) -> None:
        if not self.poll_interval_secs > 0:
            raise ValueError(f"poll_interval_secs must be > 0, got {self.poll_interval_secs!r}")

    @property
    def planning(self) -> PlanningSettings:
        return planning_settings(self.portfolio)


def planning_settings(p: PortfolioConfig) -> PlanningSettings:
    """The planner's settings of a portfolio (money as Decimal, from its float settings)."""
    return PlanningSettings(
        cash_buffer=Decimal(str(p.cash_buffer)),
        no_trade_band=Decimal(str(p.no_trade_band)),
        exposure_band=Decimal(str(p.exposure_band)),
        min_order_notional=Decimal(str(p.min_order_notional)),
    )
