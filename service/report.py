"""Backtest output files: metrics.json, metrics.csv, weights.csv, regimes.csv, equity.csv and
report.html.

``metrics.csv`` is the metrics of metrics.json as one table: a row per slice (``all``, each named
period, each calendar year) and path (the strategy, each benchmark), a column per statistic.

Every file is a pure function of the :class:`~regime_trader.strategies.backtest.BacktestResult`, so
two runs on the same input write byte-identical files (the causality and determinism tests
compare them). Pictures are PNGs rendered by matplotlib's Agg backend and embedded in the
HTML, so the report is one self-contained file that opens anywhere.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from regime_trader.strategies.backtest import BacktestResult
from regime_trader.strategies.backtest_metrics import VOL_MATCHED
from regime_trader.strategies.metrics import METRIC_NAMES, drawdown

__all__ = ["write_backtest"]

FLOAT_FORMAT = "%.10g"
PERCENT_METRICS = {"cagr", "volatility", "max_drawdown", "var_95", "cvar_95"}


def _equity_frame(result: BacktestResult) -> pd.DataFrame:
    curves = {"strategy": result.strategy.equity}
    curves.update({name: path.equity for name, path in result.benchmarks.items()})
    frame = pd.DataFrame(curves)
    frame.index.name = "date"
    return frame


def write_backtest(
    result: BacktestResult, out_dir: str | Path, config: dict[str, Any] | None = None
) -> list[Path]:
    """Write every output file of a backtest into ``out_dir`` (created if needed).

    Parameters
    ----------
    result : BacktestResult
    out_dir : str or Path
    config : dict, optional
        The run's settings, recorded in metrics.json and shown in the report.

    Returns
    -------
    list of Path
        The files written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics = {**result.metrics, "config": config or {}}
    files = {
        "metrics.json": json.dumps(metrics, indent=2, sort_keys=False, allow_nan=False) + "\n",
        "metrics.csv": _metrics_frame(metrics).to_csv(index=False, float_format=FLOAT_FORMAT),
        "weights.csv": result.strategy.weights.to_csv(float_format=FLOAT_FORMAT),
        "regimes.csv": result.regimes.to_csv(float_format=FLOAT_FORMAT),
        "equity.csv": _equity_frame(result).to_csv(float_format=FLOAT_FORMAT),
        "report.html": render_report(result, metrics),
    }
    written = []
    for name, text in files.items():
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def _axes(height: float) -> tuple[Figure, Axes]:
    # A bare Figure (no pyplot) renders with Agg and touches no global state.
    fig = Figure(figsize=(11, height))
    return fig, fig.subplots()


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _figures(result: BacktestResult) -> list[tuple[str, str]]:
    figures: list[tuple[str, str]] = []
    equity = _equity_frame(result)

    fig, ax = _axes(4.5)
    for name in equity.columns:
        ax.plot(equity.index, equity[name], lw=2.2 if name == "strategy" else 1.0, label=name)
    ax.set_yscale("log")
    ax.set_ylabel("growth of 1 (log scale)")
    ax.legend(loc="upper left", ncol=5, fontsize=8)
    ax.grid(alpha=0.3)
    figures.append(("Equity: strategy against the benchmarks", _png(fig)))

    fig, ax = _axes(3.2)
    for name, path in [("strategy", result.strategy), *result.benchmarks.items()]:
        if name in ("strategy", "erc_static", VOL_MATCHED, "sixty_forty"):
            ax.plot(
                path.returns.index,
                drawdown(path.returns),
                lw=1.5 if name == "strategy" else 1,
                label=name,
            )
    ax.set_ylabel("drawdown")
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(alpha=0.3)
    figures.append(("Drawdowns", _png(fig)))

    probs = result.regimes.filter(like="p_")
    if not probs.empty:
        fig, ax = _axes(3.2)
        ax.stackplot(
            probs.index,
            probs.fillna(0).T.to_numpy(),
            labels=[c[2:] for c in probs.columns],
            alpha=0.8,
        )
        exposure = result.diagnostics["exposure"]
        ax.plot(exposure.index, exposure, color="black", lw=1, label="exposure")
        ax.set_ylim(0, 1)
        ax.set_ylabel("filtered probability")
        ax.legend(loc="upper left", ncol=4, fontsize=8)
        figures.append(("Regime probabilities (causal filter) and invested exposure", _png(fig)))

    weights = result.strategy.weights
    fig, ax = _axes(3.2)
    ax.stackplot(weights.index, weights.T.to_numpy(), labels=list(weights.columns), alpha=0.85)
    ax.set_ylim(0, 1)
    ax.set_ylabel("weight")
    ax.legend(loc="upper left", ncol=len(weights.columns), fontsize=8)
    figures.append(("Target weights and cash", _png(fig)))

    rc = result.diagnostics.filter(like="rc_").dropna(how="all")
    if not rc.empty:
        fig, ax = _axes(3.2)
        ax.stackplot(
            rc.index, rc.fillna(0).T.to_numpy(), labels=[c[3:] for c in rc.columns], alpha=0.85
        )
        ax.set_ylim(0, 1)
        ax.set_ylabel("share of risk")
        ax.legend(loc="upper left", ncol=len(rc.columns), fontsize=8)
        figures.append(("Risk contributions of the invested portfolio", _png(fig)))
    return figures


def _fmt(name: str, value: Any) -> str:
    if value is None:
        return "n/a"
    if name in PERCENT_METRICS:
        return f"{100 * value:.2f}%"
    return f"{value:.3f}" if isinstance(value, float) else html.escape(str(value))


def _metrics_table(metrics: dict[str, Any]) -> str:
    rows = [("strategy", metrics["strategy"]), *metrics["benchmarks"].items()]
    head = "".join(f"<th>{n}</th>" for n in METRIC_NAMES)
    body = "".join(
        f"<tr><th>{html.escape(name)}</th>"
        + "".join(f"<td>{_fmt(n, stats.get(n))}</td>" for n in METRIC_NAMES)
        + "</tr>"
        for name, stats in rows
    )
    return f"<table><tr><th></th>{head}</tr>{body}</table>"


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


def _period_tables(metrics: dict[str, Any]) -> str:
    parts = [
        f"<h3>{html.escape(label)}: {section['first']} to {section['last']}</h3>"
        + _metrics_table(section)
        for label, section in metrics.get("periods", {}).items()
    ]
    return "<h2>Metrics by period</h2>" + "".join(parts) if parts else ""


def _yearly_table(metrics: dict[str, Any], statistic: str, title: str) -> str:
    years = metrics.get("per_year", {})
    if not years:
        return ""
    names = ["strategy", *metrics["benchmarks"]]
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    body = ""
    for year, section in years.items():
        stats = {"strategy": section["strategy"], **section["benchmarks"]}
        cells = "".join(f"<td>{_fmt(statistic, stats[n].get(statistic))}</td>" for n in names)
        body += f"<tr><th>{html.escape(year)}</th>{cells}</tr>"
    return f"<h2>{title}</h2><table><tr><th></th>{head}</tr>{body}</table>"


def _regime_table(metrics: dict[str, Any]) -> str:
    per = metrics["strategy"].get("per_regime")
    if not per:
        return ""
    cols = ["days", "share", "mean_return", "volatility", "sharpe", "hit_rate"]
    head = "".join(f"<th>{c}</th>" for c in cols)
    body = "".join(
        f"<tr><th>{html.escape(label)}</th>"
        + "".join(f"<td>{_fmt(c, stats.get(c))}</td>" for c in cols)
        + "</tr>"
        for label, stats in per.items()
    )
    return f"<h2>Strategy by regime</h2><table><tr><th></th>{head}</tr>{body}</table>"


def render_report(result: BacktestResult, metrics: dict[str, Any]) -> str:
    """The self-contained HTML report."""
    period = metrics.get("period", {})
    figures = "".join(
        f'<h2>{html.escape(title)}</h2><img alt="{html.escape(title)}" '
        f'src="data:image/png;base64,{data}">'
        for title, data in _figures(result)
    )
    config = html.escape(json.dumps(metrics.get("config", {}), indent=2))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>regime-trader backtest</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1150px; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }}
th, td {{ padding: 0.3rem 0.6rem; border-bottom: 1px solid #ddd; text-align: right; }}
img {{ max-width: 100%; }} pre {{ background: #f6f6f6; padding: 1rem; }}
</style></head><body>
<h1>regime-trader walk-forward backtest</h1>
<p>Decisions from {period.get("first_decision", "?")}, returns {period.get("first_return", "?")}
to {period.get("last_return", "?")} ({period.get("days", "?")} days), net of costs.
Weights decided at a close earn the following returns only; regime probabilities come from the
causal forward filter.</p>
<h2>Metrics</h2>{_metrics_table(metrics)}
<p>{VOL_MATCHED}: static ERC scaled to the strategy's realised volatility in the same slice,
the rest in cash (the fair comparison for a strategy that holds cash).</p>
{_regime_table(metrics)}{_period_tables(metrics)}
{_yearly_table(metrics, "sharpe", "Sharpe ratio by calendar year")}
{_yearly_table(metrics, "cagr", "Annualised return by calendar year")}
{_yearly_table(metrics, "max_drawdown", "Maximum drawdown by calendar year")}
{figures}
<h2>Settings</h2><pre>{config}</pre>
</body></html>
"""
