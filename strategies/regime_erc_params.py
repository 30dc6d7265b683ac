"""Every parameter of the regime-aware ERC strategy, typed, validated and read from plain data.

:class:`RegimeERCParams` is the whole parameter set of
:class:`~regime_trader.strategies.regime_erc.RegimeERC`: the regime engine and its features, the
covariance, the allocation policy and the rebalancing band. A portfolio's TOML, the research
protocol's trials and a saved state all set it through :meth:`RegimeERCParams.from_dict`
(nested tables for the nested records), and :meth:`RegimeERCParams.to_dict` gives it back, so
every field round-trips.

Feature columns are chosen by templates, matched against the engine's column names with the
wildcard ``*`` (any run of characters, as in a shell) after ``{equity}``, ``{bond}`` and
``{0}``, ``{1}``... are replaced by the equity, the bond and the symbol at that position;
``corr`` is the stock-bond correlation column. ``*_ret`` is every asset's return (HMM),
``{equity}_logdd_*`` the equity's log downside deviation at every half-life (jump engines).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

from regime_trader.strategies._checks import (
    check_choice,
    check_positive,
    check_unit_interval,
)
from regime_trader.strategies.allocation import AllocationPolicy
from regime_trader.strategies.features import FeatureSpec
from regime_trader.strategies.garch import GarchSettings
from regime_trader.strategies.jump_features import JumpFeatureSpec
from regime_trader.strategies.jump_online import JumpSettings
from regime_trader.strategies.macro import ProxySpec
from regime_trader.strategies.macro_online import MACRO_SIGNALS
from regime_trader.strategies.params import PlainRecord
from regime_trader.strategies.rebalance import RebalanceBand
from regime_trader.strategies.regime_online import RegimeSettings

__all__ = [
    "CovarianceName",
    "EngineName",
    "MacroSourceName",
    "RegimeERCParams",
    "select_columns",
]

EngineName = Literal["hmm", "jump", "sparse_jump"]
CovarianceName = Literal["ewma", "garch", "gjr"]
MacroSourceName = Literal["proxy", "series"]

# The literature's jump-model features (Shu, Yu & Mulvey 2024, table 2) of the equity asset, plus
# the stock-bond correlation: a prior from the papers, not a choice made on any data.
DEFAULT_JUMP_FEATURES = ("{equity}_ewret_*", "{equity}_logdd_*", "{equity}_sortino_*", "corr")


def select_columns(
    templates: Sequence[str],
    available: Sequence[str],
    symbols: Sequence[str],
    pair: tuple[int, int] | None,
    field_name: str,
) -> list[str]:
    """Expand column templates into column names, in template order, each name once.

    Parameters
    ----------
    templates : sequence of str
        See the module docstring.
    available : sequence of str
        The engine's column names, in its order (a wildcard's matches keep that order).
    symbols : sequence of str
    pair : (int, int) or None
        Positions of the equity and bond symbols (None: a single symbol, the equity).
    field_name : str
        The parameter the templates come from, for the messages.

    Raises
    ------
    ValueError
        If a template matches no column or a column is chosen twice (the field named, and the
        available columns listed).
    """
    equity = symbols[pair[0]] if pair is not None else symbols[0]
    bond = symbols[pair[1]] if pair is not None else ""
    names: list[str] = []
    for template in templates:
        pattern = template.format(*symbols, equity=equity, bond=bond)
        pattern = "corr_*" if template == "corr" else pattern
        matched = [n for n in available if _matches(n, pattern)]
        if not matched:
            raise ValueError(
                f"{field_name}: {template!r} matches no feature; available: {list(available)}"
            )
        twice = [n for n in matched if n in names]
        if twice:
            raise ValueError(f"{field_name}: {template!r} selects {twice[0]!r} a second time")
        names.extend(matched)
    return names


def _matches(name: str, pattern: str) -> bool:
    """``name`` matches ``pattern``, where ``*`` stands for any run of characters."""
    first, *middle, last = pattern.split("*") if "*" in pattern else (pattern, pattern)
    if "*" not in pattern:
        return name == pattern
    if not (name.startswith(first) and name.endswith(last)) or len(name) < len(first + last):
        return False
    position, end = len(first), len(name) - len(last)
    for part in middle:
        found = name.find(part, position, end)
        if found < 0:
            return False
        position = found + len(part)
    return True


@dataclass(frozen=True)
class RegimeERCParams(PlainRecord):
    """Every knob of the regime-aware ERC strategy, with its default.

    Parameters
    ----------
    engine : {"hmm", "jump", "sparse_jump"}, default "hmm"
        The regime engine: the Gaussian HMM's forward filter on ``features``/``hmm_features``,
        or the (sparse) statistical jump model's online DP on ``jump_feature_spec``/
        ``jump_features``.
    equity_symbol, bond_symbol : str, optional
        The equity asset (its return orders the regimes, calmest first) and the bond asset
        (the stock-bond correlation feature); default the first and the second symbol.
    features : FeatureSpec
        The HMM engine's feature recursions.
    hmm_features : tuple of str, default ("*_ret",)
        Column templates of the HMM's features (see the module docstring).
    regime : RegimeSettings
        HMM size, refit schedule and drift detection.
    jump_feature_spec : JumpFeatureSpec
        The jump engines' feature recursions (half-lives, correlation half-life, warm-up).
    jump_features : tuple of str
        Column templates of the jump engines' features; default the equity's EWMA return, log
        downside deviation and Sortino ratio at every half-life, and the stock-bond
        correlation (the literature's set, not fitted on any data).
    jump : JumpSettings
        Jump model size, penalties (lambda, or enter/exit), sparse budget and refit schedule.
    cov_halflife : float, default 63
        Half-life in days of the EWMA covariance (shared with the static ERC benchmark).
    covariance : {"ewma", "garch", "gjr"}, default "ewma"
        The daily covariance the allocator starts from: the EWMA; or the EWMA's correlations
        with per-asset GARCH(1,1) (``"garch"``) or GJR-GARCH(1,1,1) (``"gjr"``) variance
        forecasts (:class:`~regime_trader.strategies.garch.GarchCovariance`). The EWMA stays
        the default: the GARCH options were compared with it by out-of-sample QLIKE on the
        development windows only, not chosen on validation data.
    garch : GarchSettings
        Training window and refit calendar of the GARCH fits (used by ``"garch"``/``"gjr"``).
    macro_features : tuple of str, default ()
        Macro signals added to the regime engine's inputs, whichever the engine: any of
        ``vix``, ``vix_change``, ``curve_10y2y``, ``curve_10y3m``, as ETF proxies computed
        online from the universe's own closes
        (:class:`~regime_trader.strategies.macro_online.MacroProxyEngine`; each needs its ETFs
        in the universe). None by default: no macro feature was chosen on a development window.
    macro_source : {"proxy", "series"}, default "proxy"
        Where the macro signals come from: the ETF proxies, or the true series
        (:class:`~regime_trader.strategies.macro_online.MacroSeriesEngine`), which the
        strategy then reads from the bars' ``VIX``, ``SPREAD_10Y2Y`` and ``SPREAD_10Y3M``
        columns: the backtest's ``--macro`` file, the live cycle's ``macro_file``.
    macro_spec : ProxySpec
        Which ETFs stand in for the VIX and the curve, and the windows (the series use the
        windows too).
    regime_cov_halflife : float, default 252
        Half-life in days of the per-regime covariances.
    regime_blend : float in [0, 1], default 0.0
        Weight of the regime mixture covariance against the EWMA. The default 0 was chosen
        on 2006-2014 SPXTR/TLT/GLD data (Sharpe 1.19 at 0, 1.15 at 0.25, 1.14 at 0.5, with
        target_vol 0.08 at 0 and 0.10 otherwise): there the regimes pay through exposure
        sizing, while the slow per-regime covariances made the ERC weights lag. At 0 the
        mixture is not computed; the per-regime covariances stay updated, so a user can turn
        it on.
    shrinkage : float in [0, 1], default 0.1
        Shrinkage of the blended covariance toward its diagonal.
    risk_budgets : tuple of float or None, default None
        Risk budget per asset (equal when None).
    policy : AllocationPolicy
        Exposure sizing.
    rebalance : RebalanceBand
        Hysteresis of each decision against the previous one (default 0: none), so the
        decisions are what the strategy would trade.
    """

    engine: EngineName = "hmm"
    equity_symbol: str | None = None
    bond_symbol: str | None = None
    features: FeatureSpec = field(default_factory=FeatureSpec)
    hmm_features: tuple[str, ...] = ("*_ret",)
    regime: RegimeSettings = field(default_factory=RegimeSettings)
    jump_feature_spec: JumpFeatureSpec = field(default_factory=JumpFeatureSpec)
    jump_features: tuple[str, ...] = DEFAULT_JUMP_FEATURES
    jump: JumpSettings = field(default_factory=JumpSettings)
    cov_halflife: float = 63.0
    covariance: CovarianceName = "ewma"
    garch: GarchSettings = field(default_factory=GarchSettings)
    macro_features: tuple[str, ...] = ()
    macro_source: MacroSourceName = "proxy"
    macro_spec: ProxySpec = field(default_factory=ProxySpec)
    regime_cov_halflife: float = 252.0
    regime_blend: float = 0.0
    shrinkage: float = 0.1
    risk_budgets: tuple[float, ...] | None = None
    policy: AllocationPolicy = field(default_factory=AllocationPolicy)
    rebalance: RebalanceBand = field(default_factory=RebalanceBand)

    def __post_init__(self) -> None:
        check_choice("engine", self.engine, get_args(EngineName))
        check_choice("covariance", self.covariance, get_args(CovarianceName))
        check_choice("macro_source", self.macro_source, get_args(MacroSourceName))
        check_unit_interval("regime_blend", self.regime_blend)
        check_unit_interval("shrinkage", self.shrinkage)
        check_positive("cov_halflife", self.cov_halflife)
        check_positive("regime_cov_halflife", self.regime_cov_halflife)
        for name in ("hmm_features", "jump_features"):
            if not getattr(self, name):
                raise ValueError(f"{name} must name at least one feature")
        unknown = sorted(set(self.macro_features) - set(MACRO_SIGNALS))
        if unknown:
            raise ValueError(f"macro_features {unknown} are not among {list(MACRO_SIGNALS)}")
        for i, budget in enumerate(self.risk_budgets or ()):
            check_positive(f"risk_budgets[{i}]", budget)
        if self.equity_symbol is not None and self.equity_symbol == self.bond_symbol:
            raise ValueError(f"equity_symbol and bond_symbol are both {self.equity_symbol!r}")
        self.policy.check_states(self.n_states)

    @property
    def n_states(self) -> int:
        """Regimes of the chosen engine."""
        return self.regime.n_states if self.engine == "hmm" else self.jump.n_states
