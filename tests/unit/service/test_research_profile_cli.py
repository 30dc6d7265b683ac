"""``regime-trader profile``: list, show and promote through the command's own functions."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from regime_trader.service import research_profile_cli
from regime_trader.service.profiles import Profile, ProfileSource, load_profile, write_profile


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    research_profile_cli.add_arguments(parser)
    return research_profile_cli.run(parser.parse_args(list(argv)))


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RT_DATA_DIR", str(tmp_path))
    write_profile(
        Profile(
            name="tuned",
            version=1,
            strategy_name="regime_erc",
            params={"policy": {"target_vol": 0.11}},
            source=ProfileSource(symbols=("SPY", "TLT", "GLD"), study="s"),
            figures={"dev_sharpe": 1.25, "validation_sharpe": 0.8},
        ),
        tmp_path,
    )
    return tmp_path


def test_list_marks_the_promoted_profile(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run("list") == 0
    out = capsys.readouterr().out
    assert "baseline v1" in out and "tuned v1" in out
    assert "none promoted" in out
    assert _run("promote", "tuned") == 0
    assert "promoted tuned v1" in capsys.readouterr().out
    assert _run("list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("* tuned v1") and "dev_sharpe 1.25" in line for line in lines)
    assert load_profile("default", data_dir=data_dir).label == "tuned v1"


def test_show_prints_the_profile_and_unknown_names_fail(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run("show", "tuned", "--version", "1") == 0
    out = capsys.readouterr().out
    assert out.startswith("# tuned v1 (")
    assert "target_vol = 0.11" in out
    assert _run("promote", "nope") == 2
    assert "no profile nope" in capsys.readouterr().err
