from __future__ import annotations

import json
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest

from regime_trader.strategies.features import compute_features
from regime_trader.strategies.jump_features import JumpFeatureSpec, compute_jump_features
from regime_trader.strategies.jump_online import JumpSettings, JumpTracker, RegimeEngine
from regime_trader.strategies.regime_online import RegimeSettings, RegimeTracker, RegimeUpdate
from regime_trader.strategies.state import json_tree
from regime_trader.strategies.synthetic import generate_market

SPEC = JumpFeatureSpec(halflives=(2.0, 5.0, 10.0))
MIN_TRAIN = 120


def _fast_kwargs() -> dict[str, Any]:
    """Small settings for the property tests: few starts, an early first fit."""
    return {"n_init": 3, "refit_cold_starts": 1, "min_train_obs": MIN_TRAIN}


def _fast(**overrides: Any) -> JumpSettings:
    return JumpSettings(**{**_fast_kwargs(), **overrides})


def _inputs(prices: pd.DataFrame, spec: JumpFeatureSpec = SPEC) -> pd.DataFrame:
    """Volatility and drift features of every asset, plus the equity return, warm-up dropped."""
    features = compute_jump_features(prices, spec)
    cols = [c for c in features.columns if "_logvol_" in c or "_ewret_" in c]
    out = features[cols].assign(equity=np.log(prices.iloc[:, 0]).diff())
    return out.dropna()


def _run(tracker: JumpTracker, rows: pd.DataFrame) -> list[RegimeUpdate]:
    X = rows.drop(columns="equity").to_numpy()
    equity = rows["equity"].to_numpy()
    return [tracker.update(d, x, float(e)) for d, x, e in zip(rows.index, X, equity, strict=True)]


def _same(a: RegimeUpdate, b: RegimeUpdate) -> bool:
    fields = ("filtered", "predicted", "window_filtered")
    arrays_equal = all(
        (getattr(a, f) is None and getattr(b, f) is None)
        or np.array_equal(getattr(a, f), getattr(b, f))
        for f in fields
    )
    return arrays_equal and a.refit == b.refit and a.refit_error == b.refit_error


@pytest.mark.parametrize("sparse", [False, True])
def test_tracker_output_up_to_t_does_not_depend_on_later_rows(sparse: bool) -> None:
    rows = _inputs(generate_market(520, seed=31).prices)
    settings = _fast(jump_penalty=10.0, kappa=2.0)
    full = _run(JumpTracker(settings, sparse=sparse), rows)
    assert sum(u.refit is not None for u in full) >= 10  # the refits are inside the test
    for end in (150, 331, 480):
        cut = _run(JumpTracker(settings, sparse=sparse), rows.iloc[:end])
        assert all(_same(a, b) for a, b in zip(full[:end], cut, strict=True)), end


@pytest.mark.parametrize("sparse", [False, True])
def test_tracker_restored_from_json_continues_bit_for_bit(sparse: bool) -> None:
    rows = _inputs(generate_market(500, seed=32).prices)
    settings = _fast(jump_penalty=8.0, enter=4.0, exit=16.0)
    tracker = JumpTracker(settings, sparse=sparse)
    _run(tracker, rows.iloc[:300])
    restored = JumpTracker.from_state(json.loads(json.dumps(json_tree(tracker.state_dict()))))
    a = _run(tracker, rows.iloc[300:])
    b = _run(restored, rows.iloc[300:])
    assert all(_same(x, y) for x, y in zip(a, b, strict=True))
    assert json.dumps(json_tree(tracker.state_dict())) == json.dumps(
        json_tree(restored.state_dict())
    )
    assert restored.sparse is sparse and restored.engine == ("sparse_jump" if sparse else "jump")


def test_tracker_is_not_ready_before_min_train_obs_and_reports_each_refit() -> None:
    rows = _inputs(generate_market(400, seed=33).prices)
    tracker = JumpTracker(_fast())
    updates = _run(tracker, rows)
    first = next(i for i, u in enumerate(updates) if u.filtered is not None)
    assert first == MIN_TRAIN - 1 and updates[first].refit == "initial"
    window = updates[first].window_filtered
    assert window is not None and window.shape == (MIN_TRAIN, 2)
    assert tracker.last_fit_report is not None and tracker.last_fit_report["converged"]
    assert {u.refit for u in updates} == {None, "initial", "scheduled"}
    last = updates[-1].filtered
    assert last is not None and tracker.label == int(np.argmax(last))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 2])
def test_tracker_online_label_matches_the_true_regime(seed: int) -> None:
    # Measured on seeds 0-3 (2000 days): accuracy 0.882 0.881 0.858 0.913, switches 1.04 0.85
    # 0.94 1.00 x the truth. Seed 2's first training year holds no stress day: without the
    # min_stress_ratio guard its first fit splits calm days in two and over-calls stress
    # (accuracy 0.828 overall, 0.66 in its first 250 labelled days).
    market = generate_market(2000, seed=seed)
    rows = _inputs(market.prices)
    truth = pd.Series(market.regimes, index=market.prices.index).loc[rows.index].to_numpy()
    updates = _run(JumpTracker(JumpSettings(jump_penalty=10.0)), rows)
    ready = np.array([u.filtered is not None for u in updates])
    labels = np.array([int(np.argmax(u.filtered)) for u in updates if u.filtered is not None])
    accuracy = float((labels == truth[ready]).mean())
    ratio = np.count_nonzero(np.diff(labels)) / np.count_nonzero(np.diff(truth[ready]))
    print(f"seed {seed}: tracker online accuracy {accuracy:.3f}, switches {ratio:.2f}x the truth")
    assert accuracy >= 0.85
    assert ratio <= 1.5


def test_a_window_without_stress_is_labelled_calm_until_a_refit_finds_stress() -> None:
    calm_only = generate_market(700, seed=35, transition=((1.0, 0.0), (1.0, 0.0)))
    assert calm_only.regimes.max() == 0
    rows = _inputs(calm_only.prices)
    tracker = JumpTracker(JumpSettings(min_stress_ratio=3.0, **_fast_kwargs()))
    updates = _run(tracker, rows)
    report = tracker.last_fit_report
    assert report is not None and report["separated"] is False and report["stress_ratio"] < 3.0
    labelled = [u.filtered for u in updates if u.filtered is not None]
    assert len(labelled) > 500
    assert all(np.array_equal(p, [1.0, 0.0]) for p in labelled)
    # The same days without the guard: the clustering splits calm days and calls some stress.
    unguarded = _run(JumpTracker(JumpSettings(min_stress_ratio=0.0, **_fast_kwargs())), rows)
    stress_days = sum(int(np.argmax(u.filtered)) for u in unguarded if u.filtered is not None)
    assert stress_days > 0


def test_invalid_settings_are_rejected_quoting_the_value() -> None:
    with pytest.raises(ValueError, match=r"enter must be finite and >= 0, got -1\.0"):
        JumpSettings(enter=-1.0)
    with pytest.raises(ValueError, match="got 10, 5"):
        JumpSettings(min_train_obs=10, max_train_obs=5)
    with pytest.raises(ValueError, match=r"kappa must be >= 1, got 0\.5"):
        JumpSettings(kappa=0.5)
    with pytest.raises(ValueError, match="not a jump-tracker state"):
        JumpTracker.from_state({"engine": "hmm"})


def _switches_per_year(dates: list[pd.Timestamp], labels: list[int]) -> float:
    years = (dates[-1] - dates[0]).days / 365.25
    return float(np.count_nonzero(np.diff(labels)) / years)


@pytest.mark.realdata
@pytest.mark.slow
def test_jump_label_switches_far_less_than_the_hmm_on_the_development_window(
    real_prices: pd.DataFrame,
) -> None:
    prices = real_prices.loc["2006-01-01":"2014-12-31"]  # development window only
    hmm_rows = compute_features(prices).iloc[1:][[f"{s}_ret" for s in prices.columns]]
    hmm = RegimeTracker(RegimeSettings())
    hmm_dates, hmm_labels = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # EM convergence warnings of the HMM's refits
        for d, x in zip(hmm_rows.index, hmm_rows.to_numpy(), strict=True):
            u = hmm.update(d, x, float(x[0]))
            if u.filtered is not None:
                hmm_dates.append(d)
                hmm_labels.append(int(np.argmax(u.filtered)))
    rows = _inputs(prices, JumpFeatureSpec())
    jump_updates = _run(JumpTracker(JumpSettings(jump_penalty=10.0)), rows)
    jump = [
        (d, int(np.argmax(u.filtered)))
        for d, u in zip(rows.index, jump_updates, strict=True)
        if u.filtered is not None
    ]
    jump_rate = _switches_per_year([d for d, _ in jump], [s for _, s in jump])
    hmm_rate = _switches_per_year(hmm_dates, hmm_labels)
    stress = float(np.mean([s for _, s in jump]))
    print(f"switches/year: jump {jump_rate:.1f} (stress share {stress:.2f}), HMM {hmm_rate:.1f}")
    assert jump_rate < hmm_rate / 3
    assert 0.05 < stress < 0.6  # both regimes are used: not a constant label


def test_stress_label_keeps_its_meaning_across_refits() -> None:
    market = generate_market(1500, seed=22)
    rows = _inputs(market.prices)
    truth = pd.Series(market.regimes, index=market.prices.index).loc[rows.index].to_numpy()
    updates = _run(JumpTracker(JumpSettings(jump_penalty=10.0, refit_cold_starts=1)), rows)
    refits = [i for i, u in enumerate(updates) if u.refit == "scheduled"]
    assert len(refits) >= 30
    agreement = []
    for i in refits:
        window = updates[i].window_filtered
        assert window is not None
        days = truth[i - len(window) + 1 : i + 1]
        if days.min() < days.max():  # a window with both regimes: labels can be judged
            agreement.append(float((window.argmax(axis=1) == days).mean()))
    print(f"causal labels of each refit's window vs truth: min {min(agreement):.3f}")
    assert len(agreement) >= 30
    assert min(agreement) > 0.8


def test_both_engines_satisfy_the_shared_regime_engine_contract() -> None:
    # Checked statically by mypy (the annotated assignments) and at run time.
    hmm: RegimeEngine = RegimeTracker()
    jump: RegimeEngine = JumpTracker()
    assert isinstance(hmm, RegimeEngine) and isinstance(jump, RegimeEngine)
    rows = _inputs(generate_market(300, seed=34).prices)
    tracker = JumpTracker(_fast())  # a fitted tracker's params expose what strategies read
    _run(tracker, rows)
    params = tracker.params
    assert params is not None
    assert params.n_states == 2 and params.transmat.shape == (2, 2)
    np.testing.assert_allclose(params.transmat.sum(axis=1), 1.0)
    assert np.all(params.expected_durations >= 1.0)


def _mean_lags(labels: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Mean days from each true entry into (exit from) stress until the label follows."""
    entry: list[int] = []
    exit_: list[int] = []
    for t in np.flatnonzero(np.diff(truth)) + 1:
        lag = 0
        while t + lag < len(labels) and labels[t + lag] != truth[t] and lag < 60:
            lag += 1
        (entry if truth[t] == 1 else exit_).append(lag)
    return float(np.mean(entry)), float(np.mean(exit_))


@pytest.mark.slow
def test_cheap_entry_and_costly_exit_enter_stress_sooner_and_leave_it_later() -> None:
    # Measured on seeds 0-3, lambda 10 vs enter 5 / exit 20: entry lag 10.3 3.5 8.9 9.2 ->
    # 5.8 2.4 5.5 2.8 days, exit lag 10.8 18.5 14.4 10.0 -> 13.4 22.9 17.1 11.5 days, with
    # about as many switches (29 22 28 20 -> 27 22 32 22; truth 26 26 32 20).
    market = generate_market(2000, seed=0)
    rows = _inputs(market.prices)
    truth = pd.Series(market.regimes, index=market.prices.index).loc[rows.index].to_numpy()
    lags = {}
    for name, enter, exit_ in (("sym", None, None), ("asym", 5.0, 20.0)):
        settings = JumpSettings(jump_penalty=10.0, refit_cold_starts=1, enter=enter, exit=exit_)
        updates = _run(JumpTracker(settings), rows)
        labels = np.array([int(np.argmax(u.filtered)) for u in updates if u.filtered is not None])
        lags[name] = _mean_lags(labels, truth[len(truth) - len(labels) :])
    print(f"(entry, exit) lags in days: {lags}")
    assert lags["asym"][0] < lags["sym"][0]
    assert lags["asym"][1] > lags["sym"][1]
