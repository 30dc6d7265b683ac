"""Backtest output files: metrics.json, metrics.csv, weights.csv, regimes.csv, equity.csv and
report.html.

``metrics.csv`` is the metrics of metrics.json as one table: a row per slice (``all``, each named
period, each calendar year) and path (the strategy, each benchmark), a column per statistic.
``report.html`` is the tearsheet (:mod:`regime_trader.service.tearsheet`) of the strategy and
its benchmarks; the realised risk contributions in it need the assets' returns
(``asset_returns``), which the backtest result does not carry.

Every file is a pure function of the :class:`~regime_trader.strategies.backtest.BacktestResult`
(and the asset returns), so two runs on the same input write byte-identical files (the causality
and determinism tests compare them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from regime_trader.service.tearsheet import TearsheetInput, render_tearsheet
from regime_trader.strategies.backtest import BacktestResult
from regime_trader.strategies.backtest_attribution import (
    BacktestAttribution,
    backtest_attribution,
    return_contributions,
)
from regime_trader.strategies.metrics import METRIC_NAMES

__all__ = ["backtest_tearsheet", "write_backtest"]

FLOAT_FORMAT = "%.10g"
REFERENCE = "erc_static"
TITLE = "regime-trader walk-forward backtest"


def _equity_frame(result: BacktestResult) -> pd.DataFrame:
    curves = {"strategy": result.strategy.equity}
    curves.update({name: path.equity for name, path in result.benchmarks.items()})
    frame = pd.DataFrame(curves)
    frame.index.name = "date"
    return frame


def write_backtest(
    result: BacktestResult,
    out_dir: str | Path,
    config: dict[str, Any] | None = None,
    asset_returns: pd.DataFrame | None = None,
) -> list[Path]:
    """Write every output file of a backtest into ``out_dir`` (created if needed).

    Parameters
    ----------
    result : BacktestResult
    out_dir : str or Path
    config : dict, optional
        The run's settings, recorded in metrics.json and shown in the report.
    asset_returns : DataFrame, optional
        The assets' simple daily returns (``prices.pct_change()``), for the report's realised
        risk contributions; without them the report says they were not given.

    Returns
    -------
    list of Path
        The files written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics = {**result.metrics, "config": config or {}}
    attribution = _attribution(result, asset_returns)
    if attribution is not None:
        metrics["attribution"] = attribution.to_json()
    files = {
        "metrics.json": json.dumps(metrics, indent=2, sort_keys=False, allow_nan=False) + "\n",
        "metrics.csv": _metrics_frame(metrics).to_csv(index=False, float_format=FLOAT_FORMAT),
        "weights.csv": result.strategy.weights.to_csv(float_format=FLOAT_FORMAT),
        "regimes.csv": result.regimes.to_csv(float_format=FLOAT_FORMAT),
        "equity.csv": _equity_frame(result).to_csv(float_format=FLOAT_FORMAT),
        "report.html": render_tearsheet(
            backtest_tearsheet(result, metrics, asset_returns, attribution)
        ),
    }
    written = []
    for name, text in files.items():
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def _slices(metrics: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(kind, label, section) of the whole period, each named period, each calendar year."""
    return [
        ("all", "all", metrics),
        *(("period", k, v) for k, v in metrics.get("periods", {}).items()),
        *(("year", k, v) for k, v in metrics.get("per_year", {}).items()),
    ]


def _metrics_frame(metrics: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for kind, label, section in _slices(metrics):
        paths = [("strategy", section["strategy"]), *section["benchmarks"].items()]
        for name, stats in paths:
            values = {n: stats.get(n) for n in (*METRIC_NAMES, "vol_scale")}
            rows.append({"kind": kind, "slice": label, "name": name, **values})
    return pd.DataFrame(rows)


def _aligned(frame: pd.DataFrame, index: pd.Index) -> pd.DataFrame:
    """Decision rows re-indexed by the return each earned (the i-th decision earned the i-th)."""
    return frame.iloc[: len(index)].set_axis(index, axis=0)


def _attribution(
    result: BacktestResult, asset_returns: pd.DataFrame | None
) -> BacktestAttribution | None:
    """Forecast risk shares and return contributions (they need the assets' returns)."""
    held = result.strategy.held
    if asset_returns is None or held is None or result.risk_shares is None:
        return None
    contributions = return_contributions(held, asset_returns, result.strategy.returns)
    decided = result.regimes["regime"]
    in_force = _aligned(result.regimes[["regime"]], result.strategy.returns.index)["regime"]
    return backtest_attribution(result.risk_shares, decided, contributions, in_force)


def backtest_tearsheet(
    result: BacktestResult,
    metrics: dict[str, Any],
    asset_returns: pd.DataFrame | None = None,
    attribution: BacktestAttribution | None = None,
) -> TearsheetInput:
    """The tearsheet input of a backtest: its paths, decisions aligned to the returns they earned.

    Parameters
    ----------
    result : BacktestResult
    metrics : dict
        metrics.json's content (whole period, per regime, named periods, ``config``).
    asset_returns : DataFrame, optional
        The assets' daily returns (for realised risk contributions).
    attribution : BacktestAttribution, optional
        The attribution tables (computed from ``asset_returns`` when not given).
    """
    from regime_trader.service.cli import package_version

    returns = pd.DataFrame(
        {"strategy": result.strategy.returns}
        | {name: path.returns for name, path in result.benchmarks.items()}
    ).dropna(how="all")
    index = result.strategy.returns.index
    weights = _aligned(result.strategy.weights, index)
    probs = result.regimes.filter(like="p_")
    exposure = result.diagnostics.get("exposure")
    config = metrics.get("config", {})
    period = metrics.get("period", {})
    return TearsheetInput(
        title=TITLE,
        description=(
            f"Decisions from {period.get('first_decision', '?')}; weights decided at a close "
            "earn the following returns only; regime probabilities come from the causal forward "
            "filter. Static ERC at the strategy's volatility is static ERC scaled to the "
            "strategy's realised volatility, the rest in cash: the fair comparison for a "
            "strategy that holds cash."
        ),
        returns=returns,
        main="strategy",
        reference=REFERENCE if REFERENCE in returns else "strategy",
        version=package_version(),
        settings=config,
        weights=weights,
        asset_returns=asset_returns,
        regime_probs=None
        if probs.empty
        else _aligned(probs, index).rename(columns=lambda c: c.removeprefix("p_")),
        regimes=None
        if "regime" not in result.regimes or result.regimes["regime"].isna().all()
        else _aligned(result.regimes[["regime"]], index)["regime"],
        exposure=None if exposure is None else _aligned(exposure.to_frame(), index)["exposure"],
        turnover=result.strategy.turnover,
        cost_bps=config.get("cost_bps"),
        summary={"strategy": metrics["strategy"], **metrics["benchmarks"]},
        regime_stats=metrics["strategy"].get("per_regime") or None,
        periods=metrics.get("periods") or None,
        attribution=attribution or _attribution(result, asset_returns),
    )
