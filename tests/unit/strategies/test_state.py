"""The compact strategy state: fields, blocks, exact restore, and the migration from version 1."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from regime_trader.strategies import state
from regime_trader.strategies.base import Signal, Strategy
from regime_trader.strategies.registry import STRATEGIES, strategy_from_state, upgrade_state
from regime_trader.strategies.state import (
    BLOCK_BYTES,
    SCHEMA,
    StateFormatError,
    StrategyState,
    changed_fields,
)
from tests.unit.strategies.engines import ENGINES, quiet_signals, regime_erc, registered_case

SYMBOLS = ["SPY", "TLT", "GLD"]
VERSION_1 = Path(__file__).with_name("state_v1")
CASES = [*sorted(STRATEGIES), *(f"regime_erc-{e}" for e in ENGINES)]
# Strategies the release that wrote state_v1/ had: a newer one never saved a version-1 document.
VERSION_1_CASES = sorted(p.name.removesuffix(".json.gz") for p in VERSION_1.glob("*.json.gz"))


def _signals(strategy: Strategy, prices: pd.DataFrame) -> list[Signal]:
    return quiet_signals(strategy, prices)


def _fresh(case: str) -> Strategy:
    """As ``state_v1/record.py`` built them: every option of the regime strategy engaged."""
    return registered_case(case, SYMBOLS)


def _same_signals(a: list[Signal], b: list[Signal]) -> None:
    assert [s.to_dict() for s in a] == [s.to_dict() for s in b]


def test_fields_round_trip_arrays_bit_for_bit_and_split_long_ones_into_blocks() -> None:
    rng = np.random.default_rng(0)
    tree: dict[str, Any] = {
        "name": "x",
        "n": 3,
        "nested": {"long": rng.normal(size=(2 * BLOCK_BYTES // 24 + 5, 3)), "none": None},
        "ints": np.arange(4),
        "flags": np.array([True, False]),
        "scalar": np.float64(0.1) * 3,
        "empty": np.empty((0, 3)),
    }
    fields = StrategyState(tree).fields()
    blocks = sorted(k for k in fields if k.startswith("a:nested.long#"))
    assert blocks == ["a:nested.long#0", "a:nested.long#1", "a:nested.long#2"]
    assert json.loads(fields["header"])["schema"] == SCHEMA
    back = StrategyState.from_fields(fields).tree
    assert back["nested"]["long"].tobytes() == tree["nested"]["long"].tobytes()
    assert back["ints"].dtype == np.int64 and back["flags"].dtype == np.bool_
    assert back["scalar"] == tree["scalar"] and back["empty"].shape == (0, 3)
    assert back["name"] == "x" and back["nested"]["none"] is None
    assert StrategyState.from_bytes(StrategyState(tree).to_bytes()).fields() == fields


def test_arrays_that_need_pickle_are_neither_written_nor_read() -> None:
    with pytest.raises(ValueError, match="must hold numbers, got dtype object"):
        StrategyState({"bad": np.array([{"a": 1}], dtype=object)}).fields()
    fields = StrategyState({"ok": np.zeros(2)}).fields()
    header = fields["header"].replace(b'"<f8"', b'"|O"')
    with pytest.raises(StateFormatError, match="'ok' has a bad layout"):
        StrategyState.from_fields({**fields, "header": header})


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda f: {k: v for k, v in f.items() if k != "header"}, "no 'header' field"),
        (lambda f: {**f, "header": b"{"}, "header is not JSON"),
        (lambda f: {**f, "header": f["header"].replace(b'"schema":2', b'"schema":7')}, "7"),
        (lambda f: {k: v for k, v in f.items() if k != "a:x#1"}, r"'x' lacks blocks \['a:x#1'\]"),
        (lambda f: {**f, "a:y#0": f["a:x#0"]}, r"fields its header does not name: \['a:y#0'\]"),
        (lambda f: {**f, "a:x#1": f["a:x#1"][:-1]}, r"'x' has \d+ bytes, its layout .* needs"),
    ],
    ids=["no-header", "not-json", "schema", "missing-block", "extra-field", "short-block"],
)
def test_damaged_fields_are_refused_naming_what_is_wrong(edit: Any, match: str) -> None:
    fields = StrategyState({"x": np.zeros((BLOCK_BYTES // 16 + 1, 2))}).fields()
    with pytest.raises(StateFormatError, match=match):
        StrategyState.from_fields(edit(fields))


def test_a_blob_cut_short_or_of_another_kind_is_refused() -> None:
    blob = StrategyState({"x": np.zeros(3)}).to_bytes()
    with pytest.raises(StateFormatError, match="cut short"):
        StrategyState.from_bytes(blob[:-5])
    with pytest.raises(StateFormatError, match="magic"):
        StrategyState.from_bytes(b'{"strategy": "x"}')


@pytest.mark.parametrize("form", ["fields", "bytes"])
@pytest.mark.parametrize("case", CASES)
def test_a_strategy_restored_from_its_compact_state_continues_bit_for_bit(
    case: str, form: str, synthetic_prices: pd.DataFrame
) -> None:
    cut = 400  # after the first fit: a fitted model, filter and covariances are saved
    live = _fresh(case)
    _signals(live, synthetic_prices.iloc[:cut])
    saved = live.save_state()
    stored = (
        StrategyState.from_fields(saved.fields())
        if form == "fields"
        else StrategyState.from_bytes(saved.to_bytes())
    )
    restored = strategy_from_state(stored)
    rest = synthetic_prices.iloc[cut:]
    _same_signals(_signals(live, rest), _signals(restored, rest))
    assert live.save_state().fields() == restored.save_state().fields()


def test_every_strategy_of_the_version_1_release_keeps_its_document() -> None:
    released = {"buy_hold", "equal_weight", "equal_weight_quarterly", "erc_static", "inverse_vol"}
    released |= {"regime_erc", "sixty_forty", *(f"regime_erc-{e}" for e in ENGINES)}
    assert set(VERSION_1_CASES) == released and released <= set(CASES)


@pytest.mark.parametrize("case", VERSION_1_CASES)
def test_a_version_1_document_migrates_to_the_compact_state_with_the_same_next_signals(
    case: str, synthetic_prices: pd.DataFrame
) -> None:
    # Written by the previous release (state_v1/record.py at c42bd94) after 400 sessions.
    document = json.loads(gzip.decompress((VERSION_1 / f"{case}.json.gz").read_bytes()))
    assert document["version"] == 1
    from_document = strategy_from_state(document)
    compact = StrategyState.from_bytes(upgrade_state(document).to_bytes())
    assert compact.tree["version"] == 2
    migrated = strategy_from_state(compact)
    rest = synthetic_prices.iloc[400:]
    _same_signals(_signals(from_document, rest), _signals(migrated, rest))
    # The same strategy as one that never stopped, where the code is unchanged: to rounding,
    # since the document was written on another machine (its BLAS sums in its own order).
    if not case.endswith("-hmm") and case != "regime_erc":
        live = _fresh(case)
        _signals(live, synthetic_prices.iloc[:400])
        _assert_close_trees(live.save_state().tree, upgrade_state(document).tree)


def _assert_close_trees(ours: object, theirs: object, path: str = "state") -> None:
    """Equal structure and values, floats and arrays to 1e-12 relative."""
    if isinstance(ours, dict):
        assert isinstance(theirs, dict) and sorted(ours) == sorted(theirs), path
        for key in ours:
            _assert_close_trees(ours[key], theirs[key], f"{path}.{key}")
    elif isinstance(ours, (list, tuple)) and not isinstance(theirs, np.ndarray):
        assert isinstance(theirs, (list, tuple)) and len(ours) == len(theirs), path
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            _assert_close_trees(a, b, f"{path}[{i}]")
    elif isinstance(ours, (float, np.ndarray)) or isinstance(theirs, (float, np.ndarray)):
        np.testing.assert_allclose(
            np.asarray(ours, dtype=float),
            np.asarray(theirs, dtype=float),
            rtol=1e-12,
            atol=1e-15,
            err_msg=path,
        )
    else:
        assert ours == theirs, path


def test_a_full_training_window_changes_one_block_a_day(
    synthetic_prices: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(state, "BLOCK_BYTES", 1024)  # 32 rows of 4 floats: ten blocks
    strategy = regime_erc(SYMBOLS, "hmm", regime={"max_train_obs": 300})
    _signals(strategy, synthetic_prices.iloc[:500])
    before = strategy.save_state().fields()
    ring = [k for k in before if k.startswith("a:tracker.window.ring#")]
    row_bytes = strategy.save_state().tree["tracker"]["window"]["ring"][0].nbytes
    assert len(ring) == -(-300 // (1024 // row_bytes)) == 10
    _signals(strategy, synthetic_prices.iloc[500:501])
    changed, removed = changed_fields(strategy.save_state().fields(), before)
    assert removed == []
    assert len([k for k in changed if k in ring]) == 1
    unchanged = sum(len(before[k]) for k in before if k not in changed)
    assert unchanged > sum(len(v) for v in changed.values())  # most bytes need no write


def test_the_payload_is_dropped_once_it_has_seeded_the_regime_covariances(
    synthetic_prices: pd.DataFrame,
) -> None:
    strategy = regime_erc(SYMBOLS, "hmm")
    _signals(strategy, synthetic_prices.iloc[:200])  # still collecting: payload kept
    window = strategy.save_state().tree["tracker"]["window"]
    assert window["ring"].shape[1] == window["n_features"] + 1 + len(SYMBOLS)
    _signals(strategy, synthetic_prices.iloc[200:400])
    window = strategy.save_state().tree["tracker"]["window"]
    assert window["ring"].shape[1] == window["n_features"] + 1
