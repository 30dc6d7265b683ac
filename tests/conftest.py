"""Shared fixtures: the real price file (skipped when absent) and small synthetic markets."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from strategies.synthetic import generate_market

SHARED_DATA = Path(
    os.environ.get("RT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
REAL_PRICES = SHARED_DATA / "spxtr_tlt_gld_2004_2019.csv"


@pytest.fixture(scope="session")
def real_prices() -> pd.DataFrame:
    """The 2004-2019 SPXTR/TLT/GLD closes from ../shared/data, or a skip."""
    if not REAL_PRICES.is_file():
        pytest.skip(f"real price data not found at {REAL_PRICES}")
    from service.pricefile import load_prices

    return load_prices(REAL_PRICES)


@pytest.fixture(scope="session")
def synthetic_prices() -> pd.DataFrame:
    """700 sessions of the default seeded regime-switching market."""
    return generate_market(700, seed=7).prices
