"""``regime-trader research``: arguments checked before any study exists; the stored config."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from regime_trader.service import research_cli
from regime_trader.service.research_cli import _progress_lines
from regime_trader.service.research_config import StudyConfig
from regime_trader.service.research_study import Progress
from regime_trader.strategies.synthetic import generate_market

UNREACHABLE = "redis://127.0.0.1:1/0"  # never contacted: every case fails before the storage


@pytest.fixture(scope="module")
def prices_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("research") / "prices.csv"
    generate_market(500, seed=2).prices.to_csv(path, float_format="%.6f")
    return path  # 2010-01-04 to 2011-11-30


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    research_cli.add_arguments(parser)
    return parser.parse_args(["--storage", UNREACHABLE, "--quiet", *argv])


def _windows(dev_end: str = "2011-06-30", validation_end: str = "2011-11-30") -> list[str]:
    return ["--dev-start", "2010-06-01", "--dev-end", dev_end, "--validation-end", validation_end]


SHORT_FOLDS = ["--warmup-days", "20", "--folds", "2", "--embargo-days", "5"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--dev-start", "2010-06-01"], "needs --dev-end, --validation-end"),
        (_windows(dev_end="2011-12-30"), "need --dev-start < --dev-end < --validation-end"),
        (_windows(validation_end="2012-06-29"), "before --validation-end 2012-06-29"),
        (_windows(), "the folds do not fit the development window"),
    ],
)
def test_bad_windows_are_refused_before_any_study(
    prices_file: Path, extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert research_cli.run(_args("--prices", str(prices_file), *extra)) == 2
    assert message in capsys.readouterr().err


def test_an_unknown_parameter_stops_the_study_before_it_starts(
    prices_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    space = tmp_path / "space.toml"
    space.write_text(
        'strategy = "regime_erc"\n[[parameter]]\npath = "no_such_knob"\nchoice = ["a", "b"]\n'
    )
    code = research_cli.run(
        _args("--prices", str(prices_file), "--space", str(space), *_windows(), *SHORT_FOLDS)
    )
    assert code == 2
    err = capsys.readouterr().err
    assert f"{space}: parameter 'no_such_knob' = 'a' is refused" in err
    assert "unknown parameter 'no_such_knob'" in err


def test_a_missing_price_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert research_cli.run(_args("--prices", str(tmp_path / "none.csv"), *_windows())) == 2
    assert "no such file" in capsys.readouterr().err


def test_the_config_starts_validation_the_session_after_the_development_end(
    prices_file: Path,
) -> None:
    import pandas as pd

    args = _args("--prices", str(prices_file), *_windows(dev_end="2011-07-02"), *SHORT_FOLDS)
    prices = pd.read_csv(prices_file, index_col=0, parse_dates=True)
    config = research_cli._config(args, prices)
    assert config.validation_start == "2011-07-04"
    assert StudyConfig.from_dict(config.to_dict()) == config
    assert config.differences(config) == []
    other = StudyConfig.from_dict(config.to_dict() | {"data_file": "/elsewhere.csv", "seed": 3})
    assert config.differences(other) == ["seed: 0 != 3"]
    plan = config.plan(prices.index)
    assert plan.days[-1] == pd.Timestamp("2011-07-01")
    assert len(plan.folds) == 2  # 2011-07-02 is a Saturday: the last return is on Friday


def test_progress_off_a_terminal_is_one_line_per_tenth_of_the_trials(
    capsys: pytest.CaptureFixture[str],
) -> None:
    show = _progress_lines(every=2)
    for finished in (0, 1, 2, 3, 4, 5, 5):
        show(Progress(finished, 1, 0, 5, 0.25, 3))
    lines = capsys.readouterr().err.splitlines()
    assert [line.split()[1] for line in lines] == ["0/5", "2/5", "4/5", "5/5"]
    assert lines[-1].endswith("best 0.250 (#3)")
