"""The Alpaca JSON answers recorded from the emulator (``tests/unit/service/alpaca_responses.json``,
written by ``tests/unit/service/record_alpaca_responses.py``), for the parsing tests."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

RECORDED_FILE = Path(__file__).resolve().parents[1] / "unit" / "service" / "alpaca_responses.json"
RECORDED: dict[str, Any] = json.loads(RECORDED_FILE.read_text(encoding="utf-8"))


def recorded(name: str) -> Any:
    """A deep copy of one recorded answer, free to mutate."""
    return copy.deepcopy(RECORDED[name])
