"""erc_sleeve's parameters from a portfolio's TOML table and from a research search space."""

from __future__ import annotations

import tomllib

import pytest

from regime_trader.service.research_space import SearchSpaceError, parse_space
from regime_trader.strategies.momentum import MomentumParams
from regime_trader.strategies.registry import build_strategy
from regime_trader.strategies.sleeve_erc import SleeveERC

SYMBOLS = ["SPY", "TLT", "GLD", "AAA", "BBB", "CCC"]

PORTFOLIO = """
[portfolio.strategy_params]
sleeve_symbols = ["AAA", "BBB", "CCC"]
target_vol = 0.10
risk_budgets = { SPY = 0.4, TLT = 0.4, sleeve = 0.2 }
momentum = { top_k = 2, max_turnover = 0.25 }
"""

SPACE = """
strategy = "erc_sleeve"

[fixed]
sleeve_symbols = ["AAA", "BBB", "CCC"]

[[parameter]]
path = "momentum.top_k"
int = { low = 1, high = 3 }

[[parameter]]
path = "momentum.max_turnover"
float = { low = 0.1, high = 1.0 }

[[parameter]]
path = "risk_budgets.sleeve"
float = { low = 0.5, high = 3.0, log = true }
"""


def test_a_portfolio_toml_table_builds_the_strategy_it_describes() -> None:
    params = tomllib.loads(PORTFOLIO)["portfolio"]["strategy_params"]

    strategy = build_strategy("erc_sleeve", SYMBOLS, params)

    assert isinstance(strategy, SleeveERC)
    assert strategy.assets == ["SPY", "TLT", "GLD"]
    assert strategy.params.momentum == MomentumParams(top_k=2, max_turnover=0.25)
    assert strategy.settings()["risk_budgets"] == {"SPY": 0.4, "TLT": 0.4, "sleeve": 0.2}


def test_a_search_space_over_the_sleeve_checks_against_the_strategy() -> None:
    space = parse_space(SPACE, "erc_sleeve.toml")

    space.check(SYMBOLS)

    bad = parse_space(SPACE.replace("low = 1, high = 3", "low = 0, high = 3"), "bad.toml")
    with pytest.raises(SearchSpaceError, match=r"'momentum.top_k' = 0 .*top_k must be"):
        bad.check(SYMBOLS)
