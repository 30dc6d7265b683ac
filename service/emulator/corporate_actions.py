"""Splits and cash dividends: the file format, and backward-adjusted closes as of a date.

A price file replayed by the emulator holds RAW closes (what traded). Alpaca's market-data API
adjusts history at query time (``adjustment=raw|split|dividend|all``), so bars fetched today for
last month can differ from those fetched last month; :func:`adjust_closes` computes exactly that
view, as of a date, with the CRSP-style backward method:

- only actions with ``ex_date <= as_of`` apply (later ones are not known yet);
- a split of ratio ``r`` (new shares per old share: 2 for a 2:1 split, 0.5 for a 1:2 reverse
  split) divides every close *before* its ex-date by ``r``;
- a cash dividend of ``D`` dollars per share multiplies every close before its ex-date by
  ``1 - D / P``, where ``P`` is the RAW close of the session just before the ex-date. ``D`` is
  declared in the shares of its own date, which is also the basis of that raw close, so the
  ratio needs no split correction; factors of several actions multiply;
- closes on and after an ex-date are unchanged by that action.

So the most recent prices are always the raw ones, and a total-return series (``all``) has no
jump at an ex-date. The file (``--corporate-actions PATH``) is a CSV with the header
``symbol,ex_date,kind,value``: ``kind`` is ``split`` (``value`` = new shares per old share) or
``cash_dividend`` (``value`` = dollars per share).

References
----------
CRSP, "Data Descriptions Guide: Cumulative Factor to Adjust Prices" (backward adjustment,
``1 - D / P`` for cash distributions).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "ADJUSTMENTS",
    "HEADER",
    "ActionKind",
    "CorporateAction",
    "CorporateActionError",
    "adjust_closes",
    "adjustment_factors",
    "load_corporate_actions",
    "parse_adjustment",
]

HEADER = ("symbol", "ex_date", "kind", "value")


class CorporateActionError(ValueError):
    """A corporate action (or its file) cannot be used; the message names row and field."""


class ActionKind(StrEnum):
    """What a corporate action does to prices and holdings."""

    SPLIT = "split"
    CASH_DIVIDEND = "cash_dividend"


# Alpaca's values of ``adjustment`` and the action kinds each one applies. ``spin-off`` is
# accepted as Alpaca does, but the emulator models no spin-offs, so it adjusts nothing.
ADJUSTMENTS: dict[str, frozenset[ActionKind]] = {
    "raw": frozenset(),
    "split": frozenset({ActionKind.SPLIT}),
    "dividend": frozenset({ActionKind.CASH_DIVIDEND}),
    "spin-off": frozenset(),
    "all": frozenset({ActionKind.SPLIT, ActionKind.CASH_DIVIDEND}),
}


@dataclass(frozen=True)
class CorporateAction:
    """One split or cash dividend.

    Parameters
    ----------
    symbol : str
        The asset.
    ex_date : date
        First session traded without the dividend / on the new share count.
    kind : ActionKind
        ``split`` or ``cash_dividend``.
    value : float
        Split: new shares per old share (> 0). Dividend: dollars per share (> 0).
    """

    symbol: str
    ex_date: date
    kind: ActionKind
    value: float

    def __post_init__(self) -> None:
        if not self.symbol:
            raise CorporateActionError("symbol must not be empty")
        if not (math.isfinite(self.value) and self.value > 0):
            raise CorporateActionError(
                f"{self.symbol} {self.ex_date}: value must be finite and > 0, got {self.value}"
            )
        if self.kind is ActionKind.SPLIT and self.value == 1:
            raise CorporateActionError(
                f"{self.symbol} {self.ex_date}: a split of ratio 1 changes nothing"
            )

    def to_json(self) -> dict[str, str | float]:
        """Describe the action (the admin routes and the state file)."""
        return {
            "symbol": self.symbol,
            "ex_date": self.ex_date.isoformat(),
            "kind": self.kind.value,
            "value": self.value,
        }


def parse_adjustment(text: str) -> frozenset[ActionKind]:
    """Return the action kinds an ``adjustment`` query value applies.

    Alpaca accepts one value or a comma-separated combination (``split,spin-off``).

    Raises
    ------
    CorporateActionError
        If a part is not one of raw, split, dividend, spin-off, all, or is repeated.
    """
    parts = [p.strip() for p in text.split(",")]
    if not parts or any(p not in ADJUSTMENTS for p in parts) or len(set(parts)) != len(parts):
        raise CorporateActionError(
            f"invalid adjustment: {text!r} (one or more of {', '.join(ADJUSTMENTS)})"
        )
    kinds: frozenset[ActionKind] = frozenset()
    for part in parts:
        kinds |= ADJUSTMENTS[part]
    return kinds


def _row_error(path: Path, line: int, field: str, value: str, why: str) -> CorporateActionError:
    return CorporateActionError(f"{path}: line {line}, field {field!r}: {value!r} {why}")


def load_corporate_actions(
    path: Path, symbols: Collection[str] | None = None
) -> tuple[CorporateAction, ...]:
    """Read and validate a corporate-actions CSV (header ``symbol,ex_date,kind,value``).

    Parameters
    ----------
    path : Path
        The file. Lines are counted as a spreadsheet shows them (the header is line 1).
    symbols : collection of str, optional
        The known symbols; an action for any other symbol is refused. None: not checked here
        (the emulator checks against its market at start).

    Returns
    -------
    tuple of CorporateAction
        Sorted by ex-date, then symbol.

    Raises
    ------
    CorporateActionError
        Naming the line and the field: missing file or header, unknown symbol or kind, a date
        that is not ``YYYY-MM-DD``, a value that is not a number > 0, a repeated action.
    """
    if not path.is_file():
        raise CorporateActionError(f"{path}: no such file")
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = tuple(h.strip() for h in next(reader, []))
        if header != HEADER:
            raise CorporateActionError(
                f"{path}: line 1: header must be {','.join(HEADER)}, got {','.join(header)!r}"
            )
        actions = [
            _parse_row(path, line, row, symbols)
            for line, row in enumerate(reader, start=2)
            if any(cell.strip() for cell in row)
        ]
    seen: set[tuple[str, date, ActionKind]] = set()
    for action in actions:
        key = (action.symbol, action.ex_date, action.kind)
        if key in seen:
            raise CorporateActionError(
                f"{path}: {action.kind.value} of {action.symbol} on {action.ex_date} is listed "
                "twice"
            )
        seen.add(key)
    return tuple(sorted(actions, key=lambda a: (a.ex_date, a.symbol, a.kind.value)))


def _parse_row(
    path: Path, line: int, row: Sequence[str], symbols: Collection[str] | None
) -> CorporateAction:
    if len(row) != len(HEADER):
        raise CorporateActionError(
            f"{path}: line {line}: expected {len(HEADER)} fields ({','.join(HEADER)}), "
            f"got {len(row)}"
        )
    symbol, ex_text, kind_text, value_text = (cell.strip() for cell in row)
    if not symbol:
        raise _row_error(path, line, "symbol", symbol, "is empty")
    if symbols is not None and symbol not in symbols:
        raise _row_error(path, line, "symbol", symbol, f"is not traded (known: {sorted(symbols)})")
    try:
        ex_date = date.fromisoformat(ex_text)
    except ValueError:
        raise _row_error(path, line, "ex_date", ex_text, "is not a YYYY-MM-DD date") from None
    try:
        kind = ActionKind(kind_text)
    except ValueError:
        known = ", ".join(k.value for k in ActionKind)
        raise _row_error(path, line, "kind", kind_text, f"is not one of {known}") from None
    try:
        value = float(value_text)
    except ValueError:
        raise _row_error(path, line, "value", value_text, "is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise _row_error(path, line, "value", value_text, "must be a number > 0")
    if kind is ActionKind.SPLIT and value == 1:
        raise _row_error(path, line, "value", value_text, "is a split that changes nothing")
    return CorporateAction(symbol, ex_date, kind, value)


def adjustment_factors(
    dates: Sequence[date],
    raw_closes: np.ndarray,
    actions: Iterable[CorporateAction],
    as_of: date,
    kinds: Collection[ActionKind],
) -> tuple[np.ndarray, np.ndarray]:
    """Return the price and volume factors of one symbol's sessions as of ``as_of``.

    Parameters
    ----------
    dates : sequence of date, length n_sessions
        Session dates, increasing.
    raw_closes : ndarray of shape (n_sessions,)
        The symbol's raw closes on those dates.
    actions : iterable of CorporateAction
        The symbol's actions (others are the caller's mistake: they are not filtered here).
    as_of : date
        Actions with a later ex-date are ignored.
    kinds : collection of ActionKind
        Which kinds to apply.

    Returns
    -------
    price_factor, volume_factor : ndarray of shape (n_sessions,)
        Adjusted close = raw close x ``price_factor``; adjusted volume = raw volume x
        ``volume_factor`` (splits only: the product of the later split ratios).

    Raises
    ------
    CorporateActionError
        If a dividend is at least the close before its ex-date (the factor would be <= 0).
    """
    n = len(dates)
    price = np.ones(n)
    volume = np.ones(n)
    ordinals = np.array([d.toordinal() for d in dates], dtype=np.int64)
    for action in actions:
        if action.ex_date > as_of or action.kind not in kinds:
            continue
        cut = int(np.searchsorted(ordinals, action.ex_date.toordinal()))  # first row >= ex
        if cut == 0:
            continue  # no session before the ex-date in this window: nothing to adjust
        if action.kind is ActionKind.SPLIT:
            price[:cut] /= action.value
            volume[:cut] *= action.value
        else:
            previous = float(raw_closes[cut - 1])
            if action.value >= previous:
                raise CorporateActionError(
                    f"{action.symbol}: dividend {action.value} on {action.ex_date} is not "
                    f"below the close {previous} of {dates[cut - 1]}"
                )
            price[:cut] *= 1.0 - action.value / previous
    return price, volume


def adjust_closes(
    raw: pd.DataFrame, actions: Iterable[CorporateAction], as_of: date, adjustment: str
) -> pd.DataFrame:
    """Return closes adjusted backward for the actions known on ``as_of``.

    Parameters
    ----------
    raw : DataFrame of shape (n_sessions, n_symbols)
        Raw closes indexed by session date (dates or timestamps), increasing.
    actions : iterable of CorporateAction
        Actions of any symbol; those of symbols not in ``raw`` are ignored.
    as_of : date
        The day the history is looked at: only actions with ``ex_date <= as_of`` apply.
    adjustment : str
        ``raw``, ``split``, ``dividend``, ``all`` (or ``spin-off``, which adjusts nothing), or
        a comma-separated combination, as Alpaca's ``adjustment`` parameter.

    Returns
    -------
    DataFrame of shape (n_sessions, n_symbols)
        Same index and columns; values as the module docstring defines (not rounded).

    Raises
    ------
    CorporateActionError
        For an unknown ``adjustment`` or a dividend not below the previous close.
    """
    kinds = parse_adjustment(adjustment)
    dates = [pd.Timestamp(d).date() for d in raw.index]
    by_symbol: dict[str, list[CorporateAction]] = {}
    for action in actions:
        by_symbol.setdefault(action.symbol, []).append(action)
    adjusted = raw.astype(float).copy()
    for symbol in raw.columns:
        mine = by_symbol.get(str(symbol), [])
        if not mine or not kinds:
            continue
        column = raw[symbol].to_numpy(dtype=float)
        factor, _ = adjustment_factors(dates, column, mine, as_of, kinds)
        adjusted[symbol] = column * factor
    return adjusted
