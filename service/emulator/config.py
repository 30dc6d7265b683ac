"""Settings of one emulator instance, validated once at construction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

from regime_trader.service.emulator.corporate_actions import CorporateAction

__all__ = [
    "DEFAULT_KEY_ID",
    "DEFAULT_SECRET_KEY",
    "DEFAULT_START_DATE",
    "DEFAULT_SYMBOLS",
    "DUPLICATE_CODES",
    "MAX_ACCOUNTS",
    "EmulatorConfig",
    "EmulatorConfigError",
    "account_keys",
]

DEFAULT_KEY_ID = "emulator-key-id"
# The emulator's documented default key, accepted only by a local emulator.
DEFAULT_SECRET_KEY = "emulator-secret-key"  # nosec B105
# The first catalogue group (kept for callers that name it; the default universe is the
# whole catalogue, see regime_trader.service.emulator.catalogue).
DEFAULT_SYMBOLS = ("SPY", "TLT", "GLD")
# The two codes Alpaca has been seen to answer a duplicate client_order_id with (HTTP 422).
DUPLICATE_CODES = (40010001, 42210000)
# Enough for the scale benchmark's 1,000 portfolios and then some; each account costs a few kB.
MAX_ACCOUNTS = 10_000
# A fixed default start keeps every run of the default emulator identical.
DEFAULT_START_DATE = date(2024, 1, 2)


class EmulatorConfigError(ValueError):
    """The emulator cannot start with these settings; the message says which and why."""


@dataclass(frozen=True)
class EmulatorConfig:
    """Settings of an emulator.

    Parameters
    ----------
    host, port : str, int
        Where the server listens (port 0: any free port).
    key_id, secret_key : str
        The only API key pair accepted (``APCA-API-KEY-ID`` / ``APCA-API-SECRET-KEY``).
    cash : Decimal
        Starting cash of the account, dollars.
    seed : int
        Seed of the synthetic market and of the bar details.
    prices_csv : Path, optional
        Replay closes from this file (``regime_trader.service.pricefile`` format) instead of the
        synthetic market.
    symbols : tuple of str, optional
        Symbols to trade. None (default): the whole catalogue of real tickers
        (:data:`regime_trader.service.emulator.catalogue.CATALOGUE_SYMBOLS`, synthetic prices) or
        every column of the CSV. A catalogue symbol always has its own series; made-up symbols are
        accepted too (tests use them).
    non_fractionable : frozenset of str
        Symbols that accept whole-share quantity orders only.
    start_date : date, optional
        Day the simulated clock starts on (at 08:00 New York). Default 2024-01-02 for the
        synthetic market; for a CSV the session after ``history_sessions`` rows.
    history_sessions, future_sessions : int
        Synthetic sessions generated before and from the start date.
    rate_limit_per_min : int
        Requests per minute of wall time on ``/v2`` (0 = no limit).
    state_file : Path, optional
        JSON file the account, orders and clock are saved to after every change and loaded
        from at start.
    corporate_actions : tuple of CorporateAction
        Splits and cash dividends of the traded symbols (``--corporate-actions``): bars are
        adjusted by the ``adjustment`` parameter as of the simulated date, and holdings are
        split / dividends credited at the ex-date's open. Default none.
    multiplier : int
        Buying-power multiplier: 2 (default) is Alpaca paper's Reg T margin account, 1 a cash
        account, 4 a pattern-day-trader margin account.
    duplicate_code : int
        Alpaca code answered (HTTP 422, "client_order_id must be unique") for a duplicate
        client order id: 40010001 (default) or 42210000, both seen from the real API.
    iex_missing : tuple of (str, date)
        ``(symbol, session)`` pairs with no ``feed=iex`` daily bar (``sip`` still has them),
        added to the built-in thin symbol's gaps.
    accounts : int
        Paper accounts served (default 1), one per API key pair (:func:`account_keys`): each has
        its own cash, orders and positions on the one market and clock, so many portfolios can
        each trade their own account on one emulator. More than one needs no ``state_file``.
    """

    host: str = "127.0.0.1"
    port: int = 8765
    key_id: str = DEFAULT_KEY_ID
    secret_key: str = DEFAULT_SECRET_KEY
    cash: Decimal = Decimal("100000")
    seed: int = 0
    prices_csv: Path | None = None
    symbols: tuple[str, ...] | None = None
    non_fractionable: frozenset[str] = field(default_factory=frozenset)
    start_date: date | None = None
    history_sessions: int = 756
    future_sessions: int = 756
    rate_limit_per_min: int = 200
    state_file: Path | None = None
    corporate_actions: tuple[CorporateAction, ...] = ()
    multiplier: int = 2
    duplicate_code: int = DUPLICATE_CODES[0]
    iex_missing: tuple[tuple[str, date], ...] = ()
    accounts: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise EmulatorConfigError(f"port must be in 0..65535, got {self.port}")
        if not self.key_id or not self.secret_key:
            raise EmulatorConfigError("key_id and secret_key must not be empty")
        if not self.cash.is_finite() or self.cash < 0:
            raise EmulatorConfigError(f"cash must be a non-negative amount, got {self.cash}")
        if self.history_sessions < 1:
            raise EmulatorConfigError(
                f"history_sessions must be at least 1, got {self.history_sessions}"
            )
        if self.future_sessions < 1:
            raise EmulatorConfigError(
                f"future_sessions must be at least 1, got {self.future_sessions}"
            )
        if self.rate_limit_per_min < 0:
            raise EmulatorConfigError(
                f"rate_limit_per_min must be >= 0 (0 = off), got {self.rate_limit_per_min}"
            )
        if not 1 <= self.accounts <= MAX_ACCOUNTS:
            raise EmulatorConfigError(f"accounts must be in 1..{MAX_ACCOUNTS}, got {self.accounts}")
        if self.accounts > 1 and self.state_file is not None:
            raise EmulatorConfigError("a state file keeps one account: give accounts=1 with it")
        if self.multiplier not in (1, 2, 4):
            raise EmulatorConfigError(
                f"multiplier must be 1 (cash account), 2 or 4 (margin), got {self.multiplier}"
            )
        if self.duplicate_code not in DUPLICATE_CODES:
            raise EmulatorConfigError(
                f"duplicate_code must be one of {DUPLICATE_CODES}, got {self.duplicate_code}"
            )
        if self.symbols is not None and (
            not self.symbols or len(set(self.symbols)) != len(self.symbols)
        ):
            raise EmulatorConfigError(f"symbols must be non-empty and unique, got {self.symbols}")


def account_keys(config: EmulatorConfig) -> tuple[tuple[str, str], ...]:
    """The ``(key_id, secret_key)`` of each account: the configured pair first, then account
    ``i`` (1, 2, ...) as ``"<key_id>-<i>"`` / ``"<secret_key>-<i>"``."""
    key, secret = config.key_id, config.secret_key
    return ((key, secret), *((f"{key}-{i}", f"{secret}-{i}") for i in range(1, config.accounts)))
