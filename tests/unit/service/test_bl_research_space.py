"""The shipped bl_regime search space: every entry exists in the strategy, conditions hold, and a
sampled trial builds the strategy it describes."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import optuna

from regime_trader.service.research_space import load_space
from regime_trader.strategies.bl_regime import BlackLittermanRegime
from regime_trader.strategies.registry import build_strategy

FACTOR7 = ["SPY", "QUAL", "MTUM", "USMV", "VLUE", "SIZE", "IWF"]
SPACE = Path(
    str(resources.files("regime_trader.service") / "research_spaces" / "bl_regime_factor7.toml")
)


def test_the_space_parses_and_every_entry_exists_in_the_strategy() -> None:
    space = load_space(SPACE)
    assert space.strategy == "bl_regime"
    paths = [p.path for p in space.parameters]
    assert {"te_target", "view_confidence", "regimes.engine"} <= set(paths)
    space.check(FACTOR7)  # builds the strategy at every bound and option


def test_a_sampled_trial_builds_its_strategy_and_conditions_hold() -> None:
    space = load_space(SPACE)
    common = {
        "te_target": 0.02,
        "view_confidence": 0.5,
        "regimes.regime_cov_halflife": 126.0,
        "regimes.rebalance.weight_band": 0.03,
    }
    hmm = space.suggest(optuna.trial.FixedTrial({**common, "regimes.engine": "hmm"}))
    assert "jump" not in hmm["regimes"]  # the jump penalty is sampled for the jump engine only
    jump = space.suggest(
        optuna.trial.FixedTrial(
            {**common, "regimes.engine": "jump", "regimes.jump.jump_penalty": 30.0}
        )
    )
    strategy = build_strategy("bl_regime", FACTOR7, jump)
    assert isinstance(strategy, BlackLittermanRegime)
    p = strategy.bl_params
    assert (p.te_target, p.view_confidence) == (0.02, 0.5)
    assert p.regimes.engine == "jump" and p.regimes.jump.jump_penalty == 30.0
    assert p.regimes.regime_cov_halflife == 126.0 and p.regimes.rebalance.weight_band == 0.03
