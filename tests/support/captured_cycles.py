"""Cycle hashes captured from real runs of the version before the typed cycle record (525fdca).

``tests/unit/service/cycle_hashes_525fdca.json`` holds them (the ``tests/unit/service/
test_cycle_record.py`` docstring says how they were taken); the record, report and risk
attribution tests read them from here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CAPTURED_FILE = (
    Path(__file__).resolve().parents[1] / "unit" / "service" / "cycle_hashes_525fdca.json"
)
CAPTURED: dict[str, Any] = json.loads(CAPTURED_FILE.read_text(encoding="utf-8"))
