"""Synthetic true macro series (VIX and the two spreads) for the tests, and their CSV file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def synthetic_macro(index: pd.DatetimeIndex, seed: int = 3) -> pd.DataFrame:
    """A VIX-like level and two spreads as random walks, one row per session of ``index``."""
    rng = np.random.default_rng(seed)
    n = len(index)
    vix = 18.0 * np.exp(np.cumsum(rng.normal(0.0, 0.05, n)))
    spreads = np.cumsum(rng.normal(0.0, 0.03, (n, 2)), axis=0) + np.array([1.0, 1.5])
    return pd.DataFrame(
        {"VIX": vix, "SPREAD_10Y2Y": spreads[:, 0], "SPREAD_10Y3M": spreads[:, 1]}, index=index
    )


def write_macro(path: Path, index: pd.DatetimeIndex, seed: int = 3) -> Path:
    """:func:`synthetic_macro` as the file ``load_macro`` reads (``date`` then the columns)."""
    synthetic_macro(index, seed).rename_axis("date").to_csv(path, date_format="%Y-%m-%d")
    return path
