"""Shared fixtures: the real price file (skipped when absent) and small synthetic markets."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from regime_trader.strategies.synthetic import generate_market

# The emulator fixtures (emu, and the per-package shared_emulator / start_emulator factories).
pytest_plugins = ("tests.support.fixtures",)

SHARED_DATA = Path(
    os.environ.get("RT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
REAL_PRICES = SHARED_DATA / "spxtr_tlt_gld_2004_2019.csv"


@pytest.fixture(scope="session", autouse=True)
def _modules_have_one_name() -> Iterator[None]:
    """After the whole session: nothing was imported under its folder name (``service.x``) as
    well as through the package (``regime_trader.service.x``), which would duplicate its
    classes and module state."""
    yield
    stray = sorted(m for m in sys.modules if m.split(".")[0] in {"service", "strategies"})
    assert stray == [], f"imported outside the regime_trader namespace: {stray}"


@pytest.fixture(scope="session")
def real_prices() -> pd.DataFrame:
    """The 2004-2019 SPXTR/TLT/GLD closes from ../shared/data, or a skip."""
    if not REAL_PRICES.is_file():
        pytest.skip(f"real price data not found at {REAL_PRICES}")
    from regime_trader.service.pricefile import load_prices

    return load_prices(REAL_PRICES)


@pytest.fixture(scope="session")
def synthetic_prices() -> pd.DataFrame:
    """700 sessions of the default seeded regime-switching market."""
    return generate_market(700, seed=7).prices
