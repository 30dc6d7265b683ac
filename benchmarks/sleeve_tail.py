"""The momentum sleeve's tail: names held and turnover, exits-first cap against the old blend.

Run: ``python -m benchmarks.sleeve_tail [STOCKS.csv] [--top-k 20 50] [--max-turnover 0.5]``
(default file ``../shared/data/sp500_stocks_2010_2019.csv``).

For each ``top_k`` the same :class:`~regime_trader.strategies.momentum.MomentumSleeve` runs
over every row of the file twice, in the same process: with today's
:func:`~regime_trader.strategies.momentum.capped_step` (exits sold in full first, weakest score
first) and with the rule it replaced, kept here as :func:`_blend_step` (one blend
``old + a (target - old)`` of every weight). At each monthly rebalance it records the names
held after the trade (weight > 0, and >= 0.01% of the sleeve), how many of them are not in that
month's target, how many rebalances in a row a name has been held outside it, and the turnover
``sum_i |new_i - drifted_i|``; the first rebalance (entering from nothing, turnover 1, not
capped) is left out of the turnover mean. The panel holds today's index members only
(survivorship bias): these are mechanics, not returns.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from regime_trader.service.pricefile import load_prices
from regime_trader.strategies.momentum import (
    MomentumParams,
    MomentumSleeve,
    select_top,
)

DEFAULT_FILE = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "sp500_stocks_2010_2019.csv"
)


def _blend_step(old: np.ndarray, target: np.ndarray, max_turnover: float) -> np.ndarray:
    """The cap before exits-first: every weight moves by the same fraction of its distance."""
    if old.sum() <= 0 or target.sum() <= 0:
        return target.copy()
    distance = float(np.abs(target - old).sum())
    if distance <= max_turnover:
        return target.copy()
    step = old + (max_turnover / distance) * (target - old)
    return np.asarray(step / step.sum())


VISIBLE = 1e-4
"""A weight of the sleeve below which a holding is dust (0.01%): counted apart."""


@dataclass
class Tail:
    """What one run recorded at its rebalances."""

    held: list[int] = field(default_factory=list)
    visible: list[int] = field(default_factory=list)
    outside: list[int] = field(default_factory=list)
    turnover: list[float] = field(default_factory=list)
    longest_outside: int = 0
    dates: list[str] = field(default_factory=list)

    def row(self, label: str) -> str:
        return (
            f"| {label} | {statistics.median(self.held):g} | {max(self.held)} | "
            f"{statistics.median(self.visible):g} | {statistics.median(self.outside):g} | "
            f"{max(self.outside)} | {self.longest_outside} | "
            f"{statistics.fmean(self.turnover):.3f} |"
        )


class _BlendSleeve(MomentumSleeve):
    """The sleeve as it was: its rebalance takes the old blend."""

    def _rebalance(self) -> None:
        target = select_top(self.scores(), self._rank, self.params.top_k)
        new = _blend_step(self.holdings_, target, self.params.max_turnover)
        self.turnover_ = float(np.abs(new - self.holdings_).sum())
        self.holdings_ = new


def run(frame: pd.DataFrame, params: MomentumParams, blend: bool) -> Tail:
    """One pass of the sleeve over the panel, the old blend when ``blend``."""
    symbols = list(frame.columns)
    sleeve = (_BlendSleeve if blend else MomentumSleeve)(symbols, params)
    rank = np.argsort(np.argsort(np.array(symbols), kind="stable"), kind="stable")
    tail = Tail()
    stay = np.zeros(len(symbols), dtype=int)  # consecutive rebalances held outside the target
    for date, row in zip(frame.index, frame.to_numpy(dtype=float), strict=True):
        invested_before = sleeve.invested
        sleeve.update(date, row)
        if not sleeve.rebalanced_:
            continue
        held = sleeve.holdings_ > 0
        outside = held & (select_top(sleeve.scores(), rank, params.top_k) <= 0)
        stay = np.where(outside, stay + 1, 0)
        tail.longest_outside = max(tail.longest_outside, int(stay.max()))
        tail.held.append(int(held.sum()))
        tail.visible.append(int((sleeve.holdings_ >= VISIBLE).sum()))
        tail.outside.append(int(outside.sum()))
        if invested_before and sleeve.invested:
            tail.turnover.append(sleeve.turnover_)
        tail.dates.append(str(date.date()))
    return tail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stocks", type=Path, nargs="?", default=DEFAULT_FILE)
    parser.add_argument("--top-k", type=int, nargs="+", default=[MomentumParams().top_k, 50])
    parser.add_argument("--max-turnover", type=float, default=MomentumParams().max_turnover)
    args = parser.parse_args(argv)
    frame = load_prices(args.stocks)
    print(f"{args.stocks.name}: {frame.shape[1]} stocks, max_turnover {args.max_turnover:g}")
    print(
        "| top_k, cap rule | names held: median | max | held >= 0.01%: median "
        "| held outside the target: median | max | longest stay outside (rebalances) "
        "| mean monthly turnover |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for k in args.top_k:
        params = MomentumParams(top_k=k, max_turnover=args.max_turnover)
        before = run(frame, params, blend=True)
        after = run(frame, params, blend=False)
        print(before.row(f"{k}, blend (before)"))
        print(after.row(f"{k}, exits first (after)"))
    print(f"{len(after.dates)} monthly rebalances, {after.dates[0]}..{after.dates[-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
