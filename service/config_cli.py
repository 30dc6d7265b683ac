"""``regime-trader config check`` and ``regime-trader config show``.

- ``check`` validates the environment and the portfolio file exactly as every command does at
  start-up (:func:`regime_trader.service.config.load_settings`: types, ranges, the profile and
  strategy parameters of each portfolio, the account keys) and exits 0 with a summary, or 2
  with the message naming the field and the value. ``--broker`` also asks the broker whether
  every symbol is tradable, as ``run`` and ``rebalance`` do (exit 2 for a refused symbol, 1 if
  the broker cannot be asked).
- ``show`` prints the effective settings as TOML (``--json``: JSON): each setting under the
  variable that sets it, then every ``[[portfolio]]`` as the service will trade it (the
  profile's parameters merged in). Secret settings read ``***``, and every secret's value is
  replaced by ``***`` wherever it appears (a password in ``REDIS_URL``, a token in an alert
  URL), through the same redactor the logs use.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import tomli_w
from pydantic import SecretStr

from regime_trader.service.config import DERIVED_FIELDS, Settings
from regime_trader.service.logs import redact_value, redactor
from regime_trader.service.ops_common_cli import (
    ExitCode,
    checked_service,
    load_command_settings,
)

__all__ = ["add_config", "config", "effective_settings"]

REDACTED = "***"


def add_config(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = sub.add_parser(
        "check", help="validate the settings and the portfolio file (exit 0 or 2)"
    )
    check.add_argument(
        "--broker",
        action="store_true",
        help="also check every symbol at the broker (as run and rebalance do)",
    )
    show = sub.add_parser("show", help="print the effective settings, secrets as ***")
    show.add_argument("--json", action="store_true", help="JSON instead of TOML")


def config(args: argparse.Namespace) -> int:
    """Run ``config check`` or ``config show``; a ConfigError ends with exit 2 (the guard)."""
    settings = load_command_settings(args)
    if args.config_command == "show":
        document = effective_settings(settings)
        print(json.dumps(document, indent=2) if args.json else _toml(document), end="")
        return ExitCode.OK
    if args.broker:
        checked_service(settings).close()
    print(_summary(settings, broker_checked=args.broker))
    return ExitCode.OK


def _env_name(field: str) -> str:
    alias = Settings.model_fields[field].validation_alias
    return alias if isinstance(alias, str) else f"RT_{field.upper()}"


def _plain(value: Any) -> Any:
    """A settings value as JSON: secrets redacted, paths and times as text."""
    if isinstance(value, SecretStr):
        return REDACTED
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def effective_settings(settings: Settings) -> dict[str, Any]:
    """The settings in effect, by variable name, and the portfolios; no secret's value.

    Returns
    -------
    dict
        ``{"environment": {VARIABLE: value}, "unset": [VARIABLE, ...], "portfolios": [...]}``.
    """
    environment, unset = {}, []
    for field in Settings.model_fields:
        if field in DERIVED_FIELDS:
            continue
        value = getattr(settings, field)
        if value is None:
            unset.append(_env_name(field))
        else:
            environment[_env_name(field)] = _plain(value)
    portfolios = [
        _plain(p.model_dump(exclude_none=True, exclude={"profile_label"}))
        | ({"profile_label": p.profile_label} if p.profile_label else {})
        for p in settings.portfolios
    ]
    document = {"environment": environment, "unset": unset, "portfolios": portfolios}
    cleaned: dict[str, Any] = redact_value(document, redactor(settings.secret_values()))
    return cleaned


def _toml(document: dict[str, Any]) -> str:
    head = "# regime-trader: the configuration in effect (secrets shown as ***)\n"
    unset = document["unset"]
    if unset:
        head += f"# unset: {', '.join(unset)}\n"
    body = tomli_w.dumps({"environment": document["environment"]})
    return head + body + "\n" + tomli_w.dumps({"portfolio": document["portfolios"]})


def _summary(settings: Settings, *, broker_checked: bool) -> str:
    redact = redactor(settings.secret_values())
    redis = (
        redact(settings.redis_url)
        if settings.redis_url
        else f"embedded ({settings.data_dir / 'redis.db'})"
    )
    if settings.uses_emulator:
        broker = "the embedded emulator (no Alpaca keys)"
    elif settings.live_trading:
        broker = "Alpaca LIVE (RT_LIVE_TRADING=true)"
    else:
        broker = (
            f"Alpaca paper{f' at {settings.alpaca_base_url}' if settings.alpaca_base_url else ''}"
        )
    lines = [
        f"configuration OK: {len(settings.portfolios)} portfolio(s); broker {broker}; "
        f"Redis {redis}" + ("; every symbol tradable at the broker" if broker_checked else "")
    ]
    for p in settings.portfolios:
        strategy = p.profile_label or p.strategy
        lines.append(
            f"  {p.name}: {', '.join(p.symbols)} at {p.schedule_time:%H:%M} America/New_York "
            f"on trading days, strategy {strategy}"
        )
    return "\n".join(lines)
