"""One traded portfolio's configuration: a ``[[portfolio]]`` table of the portfolio file,
validated, and resolved against its profile and risk tolerance.

The portfolio file::

    [[portfolio]]
    name = "core"
    symbols = ["SPY", "TLT", "GLD"]
    schedule_time = "10:00"
    no_trade_band = 0.02
    max_carry_sessions = 3                    # a thin symbol's missing bar: carried, then refused
    exposure_band = 0.0                       # a total exposure this close to the held one stays
    key_id_env = "ALPACA_API_KEY_ID"          # which env vars (or *_FILE) hold this account's keys
    secret_key_env = "ALPACA_API_SECRET_KEY"
    profile = "default"                       # a strategy profile (see service.profiles)
    risk_tolerance = "moderate"               # conservative | moderate | aggressive, or a table
    [portfolio.asset_classes]                 # equity | bond | real, for symbols not built in
    XYZ = "equity"
    macro_file = "/data/macro.csv"            # true VIX/spreads, for macro_source = "series"
    [portfolio.strategy_params]               # overrides on top of the profile's parameters
    regime_blend = 0.0

What a portfolio trades: its ``profile`` (``"default"`` is the promoted profile, else the one the
package ships; ``profile_version`` pins a version), with ``strategy_params`` on top. A portfolio
that names a ``strategy`` or ``strategy_params`` but no ``profile`` runs that strategy's built-in
defaults with those overrides, as before profiles existed (``/status`` then shows no profile).
The profile is read once, here; its name and version travel with the portfolio
(:attr:`PortfolioConfig.profile_label`) to alerts and ``/status``.

A ``risk_tolerance`` (:mod:`regime_trader.strategies.risk_tolerance`; ``RT_RISK_TOLERANCE`` for
the default portfolio) sets the volatility target, the risk budgets per asset class, the floor
and cap of the invested fraction and the no-trade band: its values win over the profile's and
``strategy_params``' for those keys, and its band applies unless the portfolio sets
``no_trade_band`` itself. A custom one is a table (``risk_tolerance = { base = "moderate",
target_vol = 0.08 }``). Its name travels with the portfolio like the profile's.
"""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from regime_trader.service.exceptions import ConfigError
from regime_trader.service.order_types import DEFAULT_NO_TRADE_BAND
from regime_trader.strategies.missing_bars import DEFAULT_MAX_CARRY_SESSIONS
from regime_trader.strategies.registry import STRATEGIES, build_strategy
from regime_trader.strategies.risk_tolerance import tolerance_from

__all__ = ["PortfolioConfig", "resolved_portfolio"]

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_SYMBOL = re.compile(r"^[A-Z][A-Z0-9.]{0,9}$")


class PortfolioConfig(BaseModel):
    """One traded portfolio: its universe, schedule, trading bands and account."""

    # allow_inf_nan=False: "inf" or "1e400" seconds would load and then overflow the scheduler.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    name: str = "default"
    symbols: tuple[str, ...] = ("SPY", "TLT", "GLD")
    strategy: str = "regime_erc"  # a name of strategies.registry.STRATEGIES
    strategy_params: dict[str, Any] = Field(default_factory=dict)
    schedule_time: time = time(10, 0)
    no_trade_band: float = Field(DEFAULT_NO_TRADE_BAND, ge=0.0, lt=1.0)
    # The planner's exposure band (strategies.rebalance): a total target exposure this close to
    # the held exposure keeps the held exposure; the backtest's --exposure-band is the same rule.
    exposure_band: float = Field(0.0, ge=0.0, lt=1.0)
    cash_buffer: float = Field(0.01, ge=0.0, lt=1.0)
    min_order_notional: float = Field(1.0, ge=1.0)
    history_sessions: int = Field(1000, ge=300, le=5000)
    fill_timeout_secs: float = Field(120.0, gt=0.0)
    # A thin symbol's missing daily bar is carried from its last close for at most this many
    # sessions (0: refuse any gap); the backtest's --max-carry-sessions applies the same rule.
    max_carry_sessions: int = Field(DEFAULT_MAX_CARRY_SESSIONS, ge=0, le=20)
    key_id_env: str = "ALPACA_API_KEY_ID"
    secret_key_env: str = "ALPACA_API_SECRET_KEY"
    profile: str | None = None
    profile_version: int | None = Field(None, ge=1)
    # Derived by load_settings from the profile (``name vN``); never read from the file.
    profile_label: str | None = None
    # A built-in tolerance's name or a custom table (strategies.risk_tolerance.tolerance_from).
    risk_tolerance: str | dict[str, Any] | None = None
    asset_classes: dict[str, str] = Field(default_factory=dict)
    # The true macro series (a CSV path or an http(s) URL, service.macro_source), for a
    # strategy with macro_source "series"; fetched each cycle.
    macro_file: str | None = None
    # Derived by load_settings from risk_tolerance; never read from the file.
    risk_tolerance_label: str | None = None

    @property
    def strategy_label(self) -> str:
        """What the portfolio trades, for alerts, ``/status`` and the dashboard."""
        if self.profile_label:
            label = f"profile {self.profile_label} ({self.strategy})"
        else:
            label = (
                f"{self.strategy}, built-in defaults with the configured parameters (no profile)"
            )
        if self.risk_tolerance_label:
            label += f", risk tolerance {self.risk_tolerance_label}"
        return label

    @field_validator("strategy")
    @classmethod
    def _strategy_is_registered(cls, value: str) -> str:
        if value not in STRATEGIES:
            raise ValueError(f"unknown strategy {value!r}; one of {sorted(STRATEGIES)}")
        return value

    @field_validator("risk_tolerance")
    @classmethod
    def _tolerance_is_known(cls, value: Any) -> Any:
        if value is not None:
            tolerance_from(value)  # a RiskToleranceError is a ValueError: pydantic reports it
        return value

    @property
    def uses_profile(self) -> bool:
        """Whether a profile decides the strategy: named, or implied by naming no strategy."""
        explicit = {"strategy", "strategy_params"} & self.model_fields_set
        return self.profile is not None or not explicit

    @field_validator("name")
    @classmethod
    def _name_is_a_slug(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"{value!r} is not a portfolio name: use 1-32 of a-z, 0-9, '-', '_'")
        return value

    @field_validator("symbols", mode="before")
    @classmethod
    def _split_symbols(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(s.strip().upper() for s in re.split(r"[,\s]+", value) if s.strip())
        return value

    @field_validator("symbols")
    @classmethod
    def _symbols_are_tickers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [s for s in value if not _SYMBOL.match(s)]
        if bad or not value or len(set(value)) != len(value):
            raise ValueError(
                f"symbols must be unique upper-case tickers, got {list(value)} (bad: {bad})"
            )
        return value

    @model_validator(mode="after")
    def _strategy_params_build(self) -> PortfolioConfig:
        # Build the strategy once now so a typo in a parameter stops start-up, not a cycle
        # (a profile's portfolio is built once its profile is merged in, by load_settings).
        if self.uses_profile:
            return self
        try:
            build_strategy(self.strategy, self.symbols, self.strategy_params)
        except (TypeError, ValueError, KeyError) as e:
            raise ValueError(f"strategy_params for {self.strategy}: {e}") from e
        return self


def resolved_portfolio(
    portfolio: PortfolioConfig, default_profile: str, data_dir: Path
) -> PortfolioConfig:
    """The portfolio with its profile's strategy and its risk tolerance's parameters merged in,
    checked to build (see the module docstring).

    ``default_profile`` is the profile of a portfolio that names none; ``data_dir`` holds the
    promoted profiles.

    Raises
    ------
    ConfigError
        The profile cannot be loaded or does not fit, the tolerance is refused, or a strategy
        that reads the true macro series has no ``macro_file``.
    """
    with_profile = _with_profile(portfolio, default_profile, data_dir)
    return _macro_checked(_with_tolerance(with_profile))


def _with_profile(
    portfolio: PortfolioConfig, default_profile: str, data_dir: Path
) -> PortfolioConfig:
    """The portfolio with its profile's strategy and parameters (its overrides on top)."""
    if not portfolio.uses_profile:
        return portfolio
    from regime_trader.service.profiles import ProfileError, load_profile

    name = portfolio.profile or default_profile
    where = f"portfolio {portfolio.name!r}: profile {name!r}"
    try:
        profile = load_profile(name, portfolio.profile_version, data_dir=data_dir)
    except ProfileError as e:
        raise ConfigError(f"{where}: {e}") from None
    if "strategy" in portfolio.model_fields_set and portfolio.strategy != profile.strategy_name:
        raise ConfigError(
            f"{where}: strategy {portfolio.strategy!r} differs from the profile's "
            f"{profile.strategy_name!r} (name one, or drop strategy)"
        )
    params = profile.overridden(portfolio.strategy_params)
    try:
        build_strategy(profile.strategy_name, portfolio.symbols, params)
    except (TypeError, ValueError, KeyError) as e:
        raise ConfigError(f"{where} ({profile.label}) on {list(portfolio.symbols)}: {e}") from None
    return portfolio.model_copy(
        update={
            "strategy": profile.strategy_name,
            "strategy_params": params,
            "profile_label": profile.label,
        }
    )


def _with_tolerance(portfolio: PortfolioConfig) -> PortfolioConfig:
    """The portfolio with its risk tolerance's parameters and band (see the module docstring)."""
    if portfolio.risk_tolerance is None:
        return portfolio
    from regime_trader.service.profiles import merged_params

    where = f"portfolio {portfolio.name!r}: risk_tolerance"
    try:
        tolerance = tolerance_from(portfolio.risk_tolerance)
        knobs = tolerance.strategy_params(
            portfolio.strategy,
            portfolio.symbols,
            portfolio.asset_classes,
            portfolio.strategy_params.get("sleeve_symbols", ()),
        )
        params = merged_params(portfolio.strategy_params, knobs)
        build_strategy(portfolio.strategy, portfolio.symbols, params)
    except (TypeError, ValueError, KeyError) as e:  # RiskToleranceError is a ValueError
        raise ConfigError(f"{where}: {e}") from None
    own_band = "no_trade_band" in portfolio.model_fields_set
    return portfolio.model_copy(
        update={
            "strategy_params": params,
            "no_trade_band": portfolio.no_trade_band if own_band else tolerance.no_trade_band,
            "risk_tolerance_label": tolerance.name,
        }
    )


def _macro_checked(portfolio: PortfolioConfig) -> PortfolioConfig:
    """The portfolio, if a strategy that reads the true macro series has a ``macro_file``."""
    strategy = build_strategy(portfolio.strategy, portfolio.symbols, portfolio.strategy_params)
    if strategy.extra_inputs and portfolio.macro_file is None:
        raise ConfigError(
            f"portfolio {portfolio.name!r}: its strategy reads {list(strategy.extra_inputs)} "
            '(macro_source = "series"): set macro_file to a CSV path or URL of them'
        )
    return portfolio
