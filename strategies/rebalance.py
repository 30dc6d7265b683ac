"""Cost-aware rebalancing: the one rule that decides what to trade, live and in the backtest.

Trading every small deviation from a target pays costs for nothing; a band around what is held
leaves such deviations alone. :class:`RebalanceBand` is that rule, applied in three places so
that a backtest trades what the live service would:

1. the strategy's own decision (:class:`~regime_trader.strategies.regime_erc.RegimeERC`, the
   target against its previous decision), so ``weights.csv`` is what it would trade;
2. the backtest's execution (:func:`~regime_trader.strategies.backtest.simulate`, the target
   against the drifted holdings);
3. the live planner (``regime_trader.service.orders.plan_orders``, the target against the
   broker's positions), which keeps its Decimal arithmetic for money: the rule is written once
   for ``float`` and for ``Decimal`` weights, never mixing the two.

Given the current weights c (long-only, summing to at most 1, the rest cash) and a target t:

1. **exposure band**: if the target's total exposure sum(t) is within ``exposure_band`` of the
   held exposure sum(c) (strictly: |sum(t) - sum(c)| < band), the target is scaled to the held
   exposure, t <- t * sum(c) / sum(t): a small change of the invested fraction is not traded;
2. **weight band**: a weight within ``weight_band`` of its current value (|t_i - c_i| < band)
   is left at c_i; a zero target always sells out (t_i = 0 is kept at 0);
3. **no leverage**: if weights left alone make the total exceed 1, the buys are scaled down by
   one factor so that it is exactly 1.

With both bands 0 nothing is ever left alone and the result is the target itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, Self, TypeVar

import numpy as np

from regime_trader.strategies._checks import check_unit_interval

__all__ = ["RebalanceBand", "TradeTargets", "rebalance_targets"]


class _Weight(Protocol):
    """The arithmetic the rule uses: float and decimal.Decimal both have it (never mixed)."""

    def __add__(self, other: Self, /) -> Self: ...

    def __radd__(self, other: int, /) -> Self: ...

    def __sub__(self, other: Self, /) -> Self: ...

    def __mul__(self, other: Self, /) -> Self: ...

    def __truediv__(self, other: Self, /) -> Self: ...

    def __abs__(self) -> Self: ...

    def __lt__(self, other: Self, /) -> bool: ...

    def __gt__(self, other: Self, /) -> bool: ...


Weight = TypeVar("Weight", bound=_Weight)


@dataclass(frozen=True)
class TradeTargets(Generic[Weight]):
    """What the rule decided, one entry per asset.

    Attributes
    ----------
    weights : tuple
        The weights to trade to.
    left_alone : tuple of bool
        The weight was within the band and stays at its current value (no trade).
    scaled_to_held : bool
        The exposure band scaled the target to the held exposure.
    buys_capped : bool
        Buys were scaled down to keep the total at 1.
    """

    weights: tuple[Weight, ...]
    left_alone: tuple[bool, ...]
    scaled_to_held: bool
    buys_capped: bool


def rebalance_targets(
    current: Sequence[Weight],
    target: Sequence[Weight],
    weight_band: Weight,
    exposure_band: Weight,
) -> TradeTargets[Weight]:
    """Apply the rebalancing rule (see the module docstring) to one portfolio.

    Parameters
    ----------
    current, target : sequence of float or of Decimal, same length
        Current and target weights, each >= 0.
    weight_band, exposure_band : float or Decimal
        Of the same type as the weights, each >= 0.

    Returns
    -------
    TradeTargets
        Weights of the same type as the inputs.
    """
    if len(current) != len(target):
        raise ValueError(f"current has {len(current)} weights, target {len(target)}")
    zero = weight_band - weight_band
    held = sum(current, zero)
    wanted = sum(target, zero)
    scaled = wanted > zero and abs(wanted - held) < exposure_band and wanted != held
    aim = [t * held / wanted for t in target] if scaled else list(target)
    left = [a != zero and abs(a - c) < weight_band for a, c in zip(aim, current, strict=True)]
    out = [c if keep else a for a, c, keep in zip(aim, current, left, strict=True)]
    capped = False
    one = 1 + zero
    if any(left) and sum(out, zero) > one:
        buys = [i for i, (o, c) in enumerate(zip(out, current, strict=True)) if o > c]
        bought = set(buys)
        rest = sum((o for i, o in enumerate(out) if i not in bought), zero)
        room = one - rest - sum((current[i] for i in buys), zero)
        wanted_buys = sum((out[i] - current[i] for i in buys), zero)
        if buys and wanted_buys > zero:
            factor = max(zero, min(one, room / wanted_buys))
            for i in buys:
                out[i] = current[i] + factor * (out[i] - current[i])
            capped = True
    return TradeTargets(tuple(out), tuple(left), scaled, capped)


@dataclass(frozen=True)
class RebalanceBand:
    """The no-trade bands of the rebalancing rule, as fractions of equity.

    Parameters
    ----------
    weight_band : float in [0, 1], default 0
        A weight off its current value by less than this is left alone.
    exposure_band : float in [0, 1], default 0
        A total exposure off the held exposure by less than this keeps the held exposure.
    """

    weight_band: float = 0.0
    exposure_band: float = 0.0

    def __post_init__(self) -> None:
        check_unit_interval("weight_band", self.weight_band)
        check_unit_interval("exposure_band", self.exposure_band)

    @property
    def active(self) -> bool:
        """False when both bands are 0: the rule then returns the target unchanged."""
        return self.weight_band > 0 or self.exposure_band > 0

    def apply(self, current: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Weights to trade to from ``current`` toward ``target``, shape (n_assets,)."""
        if not self.active:
            return np.asarray(target, dtype=float)
        decided = rebalance_targets(
            [float(v) for v in current],
            [float(v) for v in target],
            float(self.weight_band),
            float(self.exposure_band),
        )
        return np.asarray(decided.weights, dtype=float)
