"""The tearsheet's attribution tables: who carried the forecast risk, and who earned the return.

The numbers are :class:`~regime_trader.strategies.risk_attribution.BacktestAttribution`'s (exact
Euler contributions of the target weights on the strategy's own forecast covariance and on each
regime's covariance; daily return contributions ``w_{i,t-1} r_{i,t}`` summed by the regime in
force). Columns name each asset with its class (``SPY (equities)``); when a class holds several
assets it gets a column of its own as well.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence

from regime_trader.service.palette import REGIME_COLOURS, asset_colours
from regime_trader.strategies.backtest_attribution import AttributionRow, BacktestAttribution
from regime_trader.strategies.risk_attribution import asset_class, class_shares

__all__ = ["attribution_section"]


def _pct(value: float | None, spec: str = ".1f") -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    text = format(100.0 * value, spec)
    return text.replace("-", "") if float(text) == 0 else text  # never -0.0


def _th(text: str, colour: str | None = None) -> str:
    swatch = f'<span class="swatch" style="background:{colour}"></span>' if colour else ""
    return f"<th>{swatch}{html.escape(text)}</th>"


def _td(text: str) -> str:
    return f"<td>{html.escape(text)}</td>"


def _row_head(label: str) -> str:
    """A regime's row has its swatch; "all decisions" and "all days" have none."""
    return _th(label, REGIME_COLOURS.get(label.removesuffix(" covariance")))


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], caption: str) -> str:
    body = "".join("<tr>" + "".join(r) + "</tr>" for r in rows)
    return f"<table><caption>{caption}</caption><tr>{''.join(head)}</tr>{body}</table>"


def _asset_title(symbol: str, classes: Mapping[str, str]) -> str:
    name = asset_class(symbol, classes)
    return symbol if name is None else f"{symbol} ({name})"


def _groups(
    symbols: Sequence[str], classes: Mapping[str, str]
) -> list[tuple[str, tuple[str, ...]]]:
    """The classes holding more than one asset (only those get a column of their own)."""
    found = class_shares(dict.fromkeys(symbols, 0.0), classes)
    return [(g.name, g.symbols) for g in found if len(g.symbols) > 1]


def _share_table(
    rows: Sequence[AttributionRow],
    symbols: Sequence[str],
    classes: Mapping[str, str],
    corner: str,
    caption: str,
) -> str:
    colours = asset_colours(symbols)
    groups = _groups(symbols, classes)
    head = [
        _th(corner),
        _th("Decisions"),
        *(_th(f"{_asset_title(s, classes)}: share of risk (%)", colours[s]) for s in symbols),
        *(_th(f"{name}: share of risk (%)") for name, _ in groups),
    ]
    body = [
        [
            _row_head(r.label),
            _td(str(r.days)),
            *(_td(_pct(r.values.get(s))) for s in symbols),
            *(_td(_pct(sum(r.values.get(s, math.nan) for s in members))) for _, members in groups),
        ]
        for r in rows
    ]
    return _table(head, body, caption)


def _return_table(
    rows: Sequence[AttributionRow], symbols: Sequence[str], classes: Mapping[str, str]
) -> str:
    colours = asset_colours(symbols)
    head = [
        _th("Regime in force"),
        _th("Days"),
        *(_th(f"{_asset_title(s, classes)} (percentage points)", colours[s]) for s in symbols),
        _th("Costs (percentage points)"),
        _th("Total (percentage points)"),
    ]
    body = [
        [
            _row_head(r.label),
            _td(str(r.days)),
            *(_td(_pct(r.values.get(s), "+.1f")) for s in symbols),
            _td(_pct(r.values.get("costs"), "+.1f")),
            _td(_pct(r.values.get("total"), "+.1f")),
        ]
        for r in rows
    ]
    caption = (
        "Contribution to return: each asset's daily contribution w<sub>i,t-1</sub> "
        "r<sub>i,t</sub> (the weights held over the day, after the execution band) and the "
        "costs, summed over the days, not compounded; by the regime of the decision that earned "
        "them. Each row adds up to its total, the sum of the strategy's daily net returns"
    )
    return _table(head, body, caption)


def attribution_section(
    attribution: BacktestAttribution, asset_classes: Mapping[str, str] | None = None
) -> str:
    """The section's HTML: forecast risk shares, shares under each regime, return contributions."""
    classes = asset_classes or {}  # over the built-in table (risk_attribution.asset_class)
    symbols = attribution.symbols
    parts = ["<h2>Risk and return attribution</h2>"]
    if attribution.forecast:
        parts.append(
            _share_table(
                attribution.forecast,
                symbols,
                classes,
                "Decisions taken",
                "Forecast risk: each asset's mean share of the forecast volatility (Euler "
                "contributions of the target weights on the covariance the strategy decided on; "
                "each row sums to 100%), over all decisions and by the regime they were taken in",
            )
        )
    if attribution.under_regime:
        under = [
            AttributionRow(f"{r.label} covariance", r.days, r.values)
            for r in attribution.under_regime
        ]
        parts.append(
            _share_table(
                under,
                symbols,
                classes,
                "Covariance",
                "Forecast risk if the regime were certain: the mean share of the same target "
                "weights under each regime's own covariance (shrunk as the forecast is)",
            )
        )
    if attribution.returns:
        parts.append(_return_table(attribution.returns, symbols, classes))
    return "\n".join(parts)
