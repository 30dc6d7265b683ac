"""Risk-tolerance profiles: how much risk a portfolio takes, and where.

A :class:`RiskTolerance` sets the volatility target, the risk budgets per asset class (equities,
bonds, real assets), the floor and cap of the invested fraction, and the no-trade band. Three are
built in (:data:`TOLERANCES`) and a portfolio may define its own (a TOML table with the same
fields, optionally on top of a built-in one: ``base = "moderate"``).

The built-in numbers are definitions of three appetites, not fitted to any data (a tolerance is
the user's choice, not a strategy parameter to tune):

============  ==========  ==========================  ==============  ====
name          target vol  budgets equity/bond/real     exposure range  band
============  ==========  ==========================  ==============  ====
conservative  6%          25% / 55% / 20%              20% - 80%       3%
moderate      10%         40% / 40% / 20%              30% - 100%      2%
aggressive    15%         60% / 25% / 15%              50% - 100%      1%
============  ==========  ==========================  ==============  ====

A class's budget is shared equally by its assets; a class the universe does not hold gives its
budget to the others in proportion. The class of a symbol comes from :data:`ASSET_CLASSES` (ETFs
and indices of the shared data) or from the portfolio's own ``asset_classes`` table; a symbol in
neither is refused by name.

:meth:`RiskTolerance.strategy_params` turns it into the parameters of a strategy that has these
knobs: ``erc_static`` (risk budgets and a volatility target on its EWMA covariance), ``erc_sleeve``
(the same, its momentum sleeve one equity asset) and ``regime_erc`` (risk budgets and its
allocation policy's absolute target, floor and cap).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

__all__ = [
    "ASSET_CLASSES",
    "CLASSES",
    "TOLERANCES",
    "RiskTolerance",
    "RiskToleranceError",
    "tolerance_from",
]

CLASSES = ("equity", "bond", "real")
# How erc_sleeve's risk_budgets name its momentum sleeve (strategies.sleeve_erc).
SLEEVE = "sleeve"

ASSET_CLASSES: dict[str, str] = {
    **dict.fromkeys(
        ("SPY", "SPXTR", "IVV", "VOO", "VTI", "QQQ", "IWM", "EFA", "EEM", "VEA", "VWO"), "equity"
    ),
    **dict.fromkeys(("QUAL", "MTUM", "USMV", "VLUE", "SIZE", "IWF"), "equity"),
    **dict.fromkeys(
        ("AGG", "BND", "IEF", "TLT", "SHY", "LQD", "HYG", "TIP", "GOVT", "IEI"), "bond"
    ),
    **dict.fromkeys(("GLD", "IAU", "SLV", "DBC", "GSG", "VNQ", "IYR"), "real"),
}


class RiskToleranceError(ValueError):
    """A tolerance that cannot be used; the message names the field and the value."""


@dataclass(frozen=True)
class RiskTolerance:
    """One risk appetite (see the module docstring).

    Parameters
    ----------
    name : str
        Shown in alerts, ``/status`` and reports.
    target_vol : float
        Annualised volatility target of the portfolio, in (0, 1].
    class_budgets : mapping of str to float
        Share of risk per class of :data:`CLASSES`, non-negative, not all zero (normalised).
    min_exposure, max_exposure : float
        Floor and cap of the invested fraction, ``0 <= min <= max <= 1``.
    no_trade_band : float
        The portfolio's no-trade band, in [0, 1).
    """

    name: str
    target_vol: float
    class_budgets: Mapping[str, float] = field(default_factory=dict)
    min_exposure: float = 0.0
    max_exposure: float = 1.0
    no_trade_band: float = 0.02

    def __post_init__(self) -> None:
        if not self.name:
            raise RiskToleranceError("a risk tolerance needs a name")
        if not 0.0 < self.target_vol <= 1.0:
            raise RiskToleranceError(f"target_vol must be in (0, 1], got {self.target_vol}")
        unknown = sorted(set(self.class_budgets) - set(CLASSES))
        if unknown:
            raise RiskToleranceError(f"class_budgets: unknown classes {unknown}; use {CLASSES}")
        if any(b < 0 for b in self.class_budgets.values()) or not any(
            b > 0 for b in self.class_budgets.values()
        ):
            raise RiskToleranceError(
                f"class_budgets must be non-negative and not all zero, got {self.class_budgets}"
            )
        if not 0.0 <= self.min_exposure <= self.max_exposure <= 1.0:
            raise RiskToleranceError(
                f"need 0 <= min_exposure <= max_exposure <= 1, got {self.min_exposure}, "
                f"{self.max_exposure}"
            )
        if not 0.0 <= self.no_trade_band < 1.0:
            raise RiskToleranceError(f"no_trade_band must be in [0, 1), got {self.no_trade_band}")

    def risk_budgets(
        self, symbols: Sequence[str], classes: Mapping[str, str] | None = None
    ) -> tuple[float, ...]:
        """Each symbol's risk budget (summing to 1): its class's, shared equally in the class."""
        of = {s: _class_of(s, classes) for s in symbols}
        held = {c: sum(1 for s in symbols if of[s] == c) for c in CLASSES}
        weight = {c: self.class_budgets.get(c, 0.0) for c in CLASSES if held[c]}
        total = sum(weight.values())
        if total <= 0:
            raise RiskToleranceError(
                f"{self.name}: no risk budget for the classes held ({sorted(weight)})"
            )
        return tuple(weight[of[s]] / total / held[of[s]] for s in symbols)

    def strategy_params(
        self,
        strategy: str,
        symbols: Sequence[str],
        classes: Mapping[str, str] | None = None,
        sleeve_symbols: Sequence[str] = (),
    ) -> dict[str, Any]:
        """The parameters that make ``strategy`` take this much risk, and there.

        ``sleeve_symbols`` (``erc_sleeve``): the stocks of its momentum sleeve, which is one
        equity asset of the ERC, after the other assets of ``symbols``.
        """
        sizing = {"min_exposure": self.min_exposure, "max_exposure": self.max_exposure}
        if strategy == "erc_sleeve":
            # The budgets by name (as SleeveERC reads them): the sleeve, if it has stocks, is
            # one equity asset of the ERC and they share its one budget; without stocks the
            # ERC is over the assets alone. By name, a research space may sample one of them.
            stocks = set(sleeve_symbols)
            names = [s for s in symbols if s not in stocks] + ([SLEEVE] if stocks else [])
            own = self.risk_budgets(names, {**(classes or {}), SLEEVE: "equity"})
            named = dict(zip(names, (float(b) for b in own), strict=True))
            return {"risk_budgets": named, "target_vol": self.target_vol, **sizing}
        budgets = list(self.risk_budgets(symbols, classes))
        if strategy == "erc_static":
            return {"risk_budgets": budgets, "target_vol": self.target_vol, **sizing}
        if strategy == "regime_erc":
            policy = {"target_vol": self.target_vol, "vol_target_mode": "absolute", **sizing}
            return {"risk_budgets": budgets, "policy": policy}
        raise RiskToleranceError(
            f"a risk tolerance sets risk budgets and a volatility target: strategy {strategy!r} "
            "has neither (use erc_static, erc_sleeve or regime_erc)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "class_budgets": dict(self.class_budgets)}


def _tolerance(
    name: str,
    target_vol: float,
    budgets: tuple[float, float, float],
    floor: float,
    cap: float,
    band: float,
) -> RiskTolerance:
    return RiskTolerance(
        name, target_vol, dict(zip(CLASSES, budgets, strict=True)), floor, cap, band
    )


TOLERANCES: dict[str, RiskTolerance] = {
    t.name: t
    for t in (
        _tolerance("conservative", 0.06, (0.25, 0.55, 0.20), 0.2, 0.8, 0.03),
        _tolerance("moderate", 0.10, (0.40, 0.40, 0.20), 0.3, 1.0, 0.02),
        _tolerance("aggressive", 0.15, (0.60, 0.25, 0.15), 0.5, 1.0, 0.01),
    )
}


def tolerance_from(value: str | Mapping[str, Any]) -> RiskTolerance:
    """A built-in tolerance by name, or a custom one from a table (``base`` names a built-in
    whose fields the others change; without it every field but the band is required).

    Raises
    ------
    RiskToleranceError
        On an unknown name or field, or a value out of range.
    """
    if isinstance(value, str):
        if value not in TOLERANCES:
            raise RiskToleranceError(
                f"unknown risk tolerance {value!r}; built in: {sorted(TOLERANCES)}"
            )
        return TOLERANCES[value]
    table = dict(value)
    base_name = table.pop("base", None)
    fields = set(RiskTolerance.__dataclass_fields__)
    unknown = sorted(set(table) - fields)
    if unknown:
        raise RiskToleranceError(f"unknown risk tolerance fields {unknown}; use {sorted(fields)}")
    try:
        if base_name is not None:
            base = tolerance_from(str(base_name))
            return replace(base, **{"name": f"custom ({base.name})", **table})
        return RiskTolerance(**{"name": "custom", **table})
    except TypeError as e:
        raise RiskToleranceError(f"risk tolerance: {e}") from None


def _class_of(symbol: str, classes: Mapping[str, str] | None) -> str:
    found = (classes or {}).get(symbol) or ASSET_CLASSES.get(symbol)
    if found is None:
        raise RiskToleranceError(
            f"symbol {symbol!r} has no asset class: add it to the portfolio's asset_classes "
            f"(one of {CLASSES})"
        )
    if found not in CLASSES:
        raise RiskToleranceError(f"asset class {found!r} of {symbol!r} is not one of {CLASSES}")
    return found
