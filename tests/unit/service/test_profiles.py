"""Profiles: typed, validated on load, versioned, promoted to the default by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from regime_trader.service.profiles import (
    SHIPPED_DEFAULT,
    Profile,
    ProfileError,
    ProfileSource,
    list_profiles,
    load_profile,
    next_version,
    parse_profile,
    promote,
    promoted,
    write_profile,
)
from regime_trader.strategies.reference import StaticERC
from regime_trader.strategies.regime_erc import RegimeERC

SOURCE = ProfileSource(
    symbols=("SPXTR", "TLT", "GLD"),
    study="s1",
    data_file="/data/prices.csv",
    data_sha256="ab" * 32,
    dev_start="2006-01-01",
    dev_end="2014-12-31",
    validation_start="2015-01-02",
    validation_end="2019-12-31",
)


def _profile(version: int = 1, target_vol: float = 0.1) -> Profile:
    return Profile(
        name="tuned",
        version=version,
        strategy_name="regime_erc",
        params={"policy": {"target_vol": target_vol}, "hmm_features": ("*_ret", "corr")},
        source=SOURCE,
        figures={"dev_sharpe": 1.1, "pbo": 0.3},
        description="test",
    )


def test_the_default_is_static_erc_until_one_is_promoted(tmp_path: Path) -> None:
    # The research protocol's choices failed the bar on validation (README, "Results"): the
    # shipped default is the simplest strategy, static ERC.
    default = load_profile("default", data_dir=tmp_path)
    assert default.name == SHIPPED_DEFAULT == "static-erc"
    assert default.version == 1
    assert default.strategy_name == "erc_static"
    assert dict(default.params) == {}
    assert isinstance(default.build(["SPY", "TLT", "GLD"]), StaticERC)
    assert promoted(tmp_path) is None


def test_the_hand_set_baseline_still_ships_as_a_regime_profile(tmp_path: Path) -> None:
    baseline = load_profile("baseline", data_dir=tmp_path)
    assert baseline.strategy_name == "regime_erc"
    assert isinstance(baseline.build(["SPY", "TLT", "GLD"]), RegimeERC)


def test_a_written_profile_loads_back_equal_and_read_only(tmp_path: Path) -> None:
    path = write_profile(_profile(), tmp_path)
    assert path == tmp_path / "profiles" / "tuned" / "v1.toml"
    loaded = load_profile("tuned", data_dir=tmp_path)
    assert loaded == _profile()
    assert loaded.path == path
    assert loaded.params["hmm_features"] == ("*_ret", "corr")
    with pytest.raises(TypeError):
        loaded.params["policy"]["target_vol"] = 0.5  # type: ignore[index]
    assert loaded.overrides() == {
        "policy": {"target_vol": 0.1},
        "hmm_features": ["*_ret", "corr"],
    }
    strategy = loaded.build(list(SOURCE.symbols))
    assert isinstance(strategy, RegimeERC)
    assert strategy.params.policy.target_vol == 0.1


def test_versions_are_never_rewritten_and_the_highest_loads(tmp_path: Path) -> None:
    write_profile(_profile(1), tmp_path)
    assert next_version("tuned", tmp_path) == 2
    write_profile(_profile(2, target_vol=0.12), tmp_path)
    with pytest.raises(ProfileError, match="tuned v2 exists already"):
        write_profile(_profile(2, target_vol=0.2), tmp_path)
    assert load_profile("tuned", data_dir=tmp_path).version == 2
    assert load_profile("tuned", 1, data_dir=tmp_path).params["policy"]["target_vol"] == 0.1
    labels = [p.label for p in list_profiles(tmp_path)]
    shipped = [p.label for p in list_profiles(tmp_path / "nothing-written")]
    assert labels == sorted([*shipped, "tuned v1", "tuned v2"])


def test_promote_makes_a_profile_the_default(tmp_path: Path) -> None:
    write_profile(_profile(1), tmp_path)
    write_profile(_profile(2, target_vol=0.12), tmp_path)
    promote("tuned", 1, tmp_path)
    assert promoted(tmp_path) == ("tuned", 1)
    default = load_profile("default", data_dir=tmp_path)
    assert default.label == "tuned v1"
    promote("tuned", data_dir=tmp_path)  # no version: the highest
    assert load_profile("default", data_dir=tmp_path).label == "tuned v2"
    with pytest.raises(ProfileError, match=r"no profile nope; known: \['baseline v1'"):
        promote("nope", data_dir=tmp_path)


GOOD = """
name = "p"
version = 1
strategy = "regime_erc"
[params]
policy = { target_vol = 0.1 }
[source]
symbols = ["SPY", "TLT", "GLD"]
"""


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("version = 1", 'version = "1"', "field 'version': must be an integer >= 1"),
        ("version = 1", "version = 0", "field 'version'"),
        ('name = "p"', 'name = "default"', "field 'name'"),
        ('strategy = "regime_erc"', 'strategy = "nope"', "field 'strategy'"),
        ("target_vol = 0.1", "target_vol = -1.0", "field 'params': refused by 'regime_erc'"),
        ("target_vol = 0.1", "no_such = 1", "field 'params'.*unknown parameter"),
        ('symbols = ["SPY", "TLT", "GLD"]', "symbols = []", "field 'source.symbols'"),
        ("[source]", "[source]\nstudy = 3", "field 'source.study': must be a string"),
        ('name = "p"', 'name = "p"\nextra = 1', "unknown fields \\['extra'\\]"),
        ("[params]", "[figures]\ndev = nan\n[params]", "field 'figures.dev': must be finite"),
    ],
)
def test_invalid_profiles_are_refused_naming_file_and_field(
    old: str, new: str, message: str
) -> None:
    assert old in GOOD
    with pytest.raises(ProfileError, match=rf"^bad\.toml: .*{message}"):
        parse_profile(GOOD.replace(old, new, 1), "bad.toml")


def test_a_profile_in_the_wrong_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "profiles" / "other"
    folder.mkdir(parents=True)
    (folder / "v1.toml").write_text(GOOD)
    with pytest.raises(ProfileError, match="should hold other v1"):
        load_profile("p", data_dir=tmp_path)
