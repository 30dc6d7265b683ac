"""The values of the ``--risk-tolerance`` and ``--asset-classes`` options, read as a
portfolio's ``risk_tolerance`` and ``asset_classes`` are (``backtest`` and ``research``)."""

from __future__ import annotations

import argparse
import json

from regime_trader.strategies.risk_tolerance import RiskTolerance, tolerance_from

__all__ = ["asset_classes_argument", "tolerance_argument"]


def tolerance_argument(text: str) -> RiskTolerance:
    """A built-in tolerance's name, or a custom one as a JSON table."""
    try:
        return tolerance_from(json.loads(text) if text.lstrip().startswith("{") else text)
    except (json.JSONDecodeError, ValueError) as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def asset_classes_argument(text: str) -> dict[str, str]:
    """A JSON object of symbol to asset class (``equity``, ``bond``, ``real``)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not JSON: {text!r} ({e})") from e
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise argparse.ArgumentTypeError(f"not a JSON object of symbol to class: {text!r}")
    return {str(k): v for k, v in value.items()}
