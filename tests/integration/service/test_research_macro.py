"""A research study of a strategy that reads the true macro series (``macro_source = "series"``):
``--macro`` feeds every trial and the close, a study without it is refused before its first
trial, and a worker, a close or a joining command given other series is refused.

The Redis and the study's arguments are :mod:`tests.integration.service.test_research_study`'s.
"""

from __future__ import annotations

import functools
from pathlib import Path

import optuna
import pandas as pd
import pytest

from regime_trader.service import research_cli
from regime_trader.service.macro_source import MacroFileError, load_macro
from regime_trader.service.research_close import close_study, closed_record
from regime_trader.service.research_config import (
    StudyConfig,
    load_study_macro,
    load_study_prices,
    macro_sha256,
    space_inputs,
)
from regime_trader.service.research_space import parse_space
from regime_trader.service.research_storage import open_storage
from regime_trader.service.research_study import WorkerSpec, load_config, run_worker
from regime_trader.strategies.macro import MACRO_COLUMNS
from tests.integration.service import test_research_study as shared
from tests.support.macro import write_macro

# The shared study's Redis fixtures, found by name.
redis_url = shared.redis_url
prefix = shared.prefix
study_prices = shared.study_prices
tiny = shared.tiny

_REGIME = """
strategy = "regime_erc"
[fixed]
regime = { min_train_obs = 120, n_init = 1, refit_months = 3 }
"""
_SERIES = """macro_features = ["vix"]
macro_source = "series"
"""
_TARGET_VOL = """
[[parameter]]
path = "policy.target_vol"
float = { low = 0.05, high = 0.2, log = true }
"""
_SAMPLED_SOURCE = """
[[parameter]]
path = "macro_source"
choice = ["proxy", "series"]
"""
_SAMPLED_FEATURES = """
[[parameter]]
path = "macro_features"
choice = { none = [], vix = ["vix"] }
"""
SERIES_SPACE = _REGIME + _SERIES + _TARGET_VOL
PLAIN_SPACE = _REGIME + _TARGET_VOL  # the same study without macro features
STUDY = "tiny-macro"
NO_STORAGE = "redis://127.0.0.1:1/0"  # _config builds a study's configuration, storing nothing


# (tmp_path, url, key_prefix, space_text, **extra): this module's tiny study.
_study_args = functools.partial(shared.small_study_args, study=STUDY)


@pytest.mark.slow
def test_a_series_study_reads_the_macro_file_everywhere_and_refuses_other_series(
    tiny: shared.TinyStudy, capsys: pytest.CaptureFixture[str]
) -> None:
    tmp_path, redis_url, prefix, closes = tiny.tmp, tiny.url, tiny.prefix, tiny.closes
    macro_file = write_macro(tmp_path / "macro.csv", pd.DatetimeIndex(closes.index))
    storage = open_storage(redis_url, prefix)

    # Without --macro: refused before the first trial, the study not even created.
    assert research_cli.run(_study_args(tmp_path, redis_url, prefix, SERIES_SPACE)) == 2
    message = capsys.readouterr().err
    assert f"reads the true macro series {list(MACRO_COLUMNS)}" in message
    assert "give them with --macro FILE_OR_URL" in message
    assert optuna.get_all_study_names(storage) == []

    args = _study_args(tmp_path, redis_url, prefix, SERIES_SPACE, macro=str(macro_file))
    assert research_cli.run(args) == 0
    study = optuna.load_study(study_name=STUDY, storage=storage)
    config = load_config(study)
    macro = load_macro(macro_file)
    assert (config.macro_source, config.macro_sha256) == (str(macro_file), macro_sha256(macro))
    record = closed_record(study)  # the close ran its windows with the series (or it raised)
    assert record is not None
    assert (
        f"`{macro_file}`, SHA-256 `{config.macro_sha256}`"
        in (tmp_path / "out/report.md").read_text()
    )

    # The trial scored the strategy reading the series: the same parameters without the macro
    # feature score otherwise.
    trial = study.get_trials()[0]
    prices = load_study_prices(config, tmp_path / "prices.csv")
    searched = parse_space(config.space_text, config.space_source)
    with_series = config.evaluator(prices, macro).evaluate(searched.overrides(trial.params))
    assert with_series.objective == trial.value
    plain = parse_space(PLAIN_SPACE, "plain.toml").overrides(trial.params)
    assert config.evaluator(prices).evaluate(plain).objective != trial.value

    # The macro file changes: a worker (given it, or reading the study's source) and the close
    # refuse it, and so does the command joining the study.
    write_macro(macro_file, pd.DatetimeIndex(closes.index), seed=4)
    changed = load_macro(macro_file)
    for given in (str(macro_file), None):
        with pytest.raises(MacroFileError, match="differs from the study's macro series"):
            run_worker(WorkerSpec(redis_url, prefix, STUDY, tmp_path / "prices.csv", 0, given))
    for other in (changed, None):
        with pytest.raises(MacroFileError, match="the study's macro series"):
            close_study(study, redis_url, prefix, closes, other)
    assert research_cli.run(args) == 2
    assert "macro_sha256: " in capsys.readouterr().err
    assert closed_record(study) == record

    # A study config stored before the macro fields still loads, reading no series.
    old = {k: v for k, v in config.to_dict().items() if not k.startswith("macro_")}
    assert load_study_macro(StudyConfig.from_dict(old)) is None


def test_the_space_check_finds_a_sampled_series_source_and_refuses_gaps(
    tmp_path: Path, study_prices: pd.DataFrame
) -> None:
    closes = study_prices
    symbols = list(closes.columns)
    index = pd.DatetimeIndex(closes.index)
    sampled = _REGIME + 'macro_features = ["vix"]\n' + _SAMPLED_SOURCE
    assert space_inputs(parse_space(sampled, "sampled.toml"), symbols) == MACRO_COLUMNS
    assert space_inputs(parse_space(PLAIN_SPACE, "plain.toml"), symbols) == ()
    # The source and the features sampled apart: only together do they read the series.
    apart = _REGIME + _SAMPLED_SOURCE + _SAMPLED_FEATURES
    assert space_inputs(parse_space(apart, "apart.toml"), symbols) == MACRO_COLUMNS

    full = load_macro(write_macro(tmp_path / "macro.csv", index))
    plain = _study_args(tmp_path, NO_STORAGE, "unused", PLAIN_SPACE, macro="macro.csv")
    with pytest.raises(research_cli.UsageError, match="--macro is for a strategy that reads"):
        research_cli._config(plain, closes, full)

    # Two weeks without a row in the development window: refused, naming the first session.
    gap = full.drop(full.loc["2011-03-01":"2011-03-15"].index)
    series = _study_args(tmp_path, NO_STORAGE, "unused", SERIES_SPACE, macro="macro.csv")
    with pytest.raises(research_cli.UsageError, match=r"no macro row on 2011-03-08 or in the 7"):
        research_cli._config(series, closes, gap)
    config = research_cli._config(series, closes, full)
    assert config.macro_sha256 == macro_sha256(full)
    assert config.macro_source == str(Path("macro.csv").resolve())  # as the data file: absolute
