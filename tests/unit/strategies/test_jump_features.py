from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from regime_trader.strategies.jump_features import (
    FeatureScaler,
    JumpFeatureEngine,
    JumpFeatureSpec,
    compute_jump_features,
    jump_feature_names,
)
from tests.support.online_engines import assert_json_restored_engine_continues

SPEC = JumpFeatureSpec(halflives=(3.0, 10.0), corr_halflife=21.0, warmup=5)


def test_features_up_to_t_do_not_change_when_more_bars_arrive(
    synthetic_prices: pd.DataFrame,
) -> None:
    full = compute_jump_features(synthetic_prices, SPEC)
    for end in (5, 6, 90, 411):
        cut = compute_jump_features(synthetic_prices.iloc[:end], SPEC)
        pd.testing.assert_frame_equal(full.iloc[:end], cut)


def test_features_match_a_direct_pandas_ewma_computation(synthetic_prices: pd.DataFrame) -> None:
    features = compute_jump_features(synthetic_prices, SPEC)
    r = np.log(synthetic_prices["GLD"]).diff().iloc[1:]
    root = np.sqrt(252)
    for h in SPEC.halflives:
        mean = r.ewm(halflife=h, adjust=True).mean()
        vol = np.sqrt((r**2).ewm(halflife=h, adjust=True).mean())
        dd = np.sqrt((np.minimum(r, 0.0) ** 2).ewm(halflife=h, adjust=True).mean()).clip(1e-6)
        got = features.iloc[SPEC.warmup - 1 :]
        want = slice(SPEC.warmup - 2, None)
        np.testing.assert_allclose(got[f"GLD_ewret_{h:g}"], mean.iloc[want], rtol=1e-10)
        np.testing.assert_allclose(
            got[f"GLD_logvol_{h:g}"], np.log(vol * root).iloc[want], rtol=1e-10
        )
        np.testing.assert_allclose(
            got[f"GLD_logdd_{h:g}"], np.log(dd * root).iloc[want], rtol=1e-10
        )
        np.testing.assert_allclose(
            got[f"GLD_sortino_{h:g}"], (mean / dd * root).iloc[want], rtol=1e-10
        )
    spy = np.log(synthetic_prices["SPY"]).diff().iloc[1:]
    tlt = np.log(synthetic_prices["TLT"]).diff().iloc[1:]

    def ew(s: pd.Series) -> pd.Series:
        return s.ewm(halflife=21.0, adjust=True).mean()

    corr: pd.Series = ew(spy * tlt) / np.sqrt(ew(spy**2) * ew(tlt**2))
    np.testing.assert_allclose(
        features["corr_SPY_TLT"].iloc[SPEC.warmup - 1 :], corr.iloc[SPEC.warmup - 2 :], rtol=1e-10
    )


def test_rows_before_the_warmup_are_nan_and_later_rows_finite(
    synthetic_prices: pd.DataFrame,
) -> None:
    features = compute_jump_features(synthetic_prices, SPEC)
    assert features.iloc[: SPEC.warmup - 1].isna().all().all()
    assert np.isfinite(features.iloc[SPEC.warmup - 1 :].to_numpy()).all()
    assert list(features.columns) == jump_feature_names(list(synthetic_prices.columns), SPEC)
    assert len(features.columns) == 3 * 2 * 4 + 1


def test_engine_restored_from_json_continues_identically(synthetic_prices: pd.DataFrame) -> None:
    engine = JumpFeatureEngine(list(synthetic_prices.columns), SPEC)
    assert_json_restored_engine_continues(
        engine,
        JumpFeatureEngine.from_state,
        synthetic_prices.to_numpy(),
        saved_after=120,
        until=200,
    )


def test_scaler_is_fit_on_training_rows_only() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4)) * [1.0, 2.0, 0.5, 3.0] + [0.0, 1.0, -2.0, 5.0]
    scaler = FeatureScaler.fit(X[:200])
    changed = X.copy()
    changed[200:] *= 50.0  # later rows change: the fitted scaler must not
    again = FeatureScaler.fit(changed[:200])
    np.testing.assert_array_equal(scaler.mean, again.mean)
    np.testing.assert_array_equal(scaler.scale, again.scale)
    np.testing.assert_array_equal(scaler.transform(X[:200]), again.transform(changed[:200]))
    Z = scaler.transform(X[:200])
    np.testing.assert_allclose(Z.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(Z.std(axis=0), 1.0, atol=1e-12)
    restored = FeatureScaler.from_dict(json.loads(json.dumps(scaler.to_dict())))
    np.testing.assert_array_equal(restored.transform(X), scaler.transform(X))


def test_jump_model_scaler_ignores_rows_after_the_training_window() -> None:
    from regime_trader.strategies.jump import JumpModel

    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal(size=(150, 2)), rng.normal(size=(150, 2)) + 3.0])
    a = JumpModel(2, jump_penalty=2.0).fit(X[:200]).params_
    changed = X.copy()
    changed[200:] += 100.0
    b = JumpModel(2, jump_penalty=2.0).fit(changed[:200]).params_
    assert a.to_dict() == b.to_dict()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"halflives": ()}, r"halflives must be positive and non-empty, got \(\)"),
        ({"halflives": (5.0, -1.0)}, r"got \(5\.0, -1\.0\)"),
        ({"halflives": (5.0, 5.0)}, "halflives must be distinct"),
        ({"corr_halflife": 0.0}, r"corr_halflife must be finite and > 0, got 0\.0"),
        ({"warmup": 1}, "warmup must be an integer >= 2, got 1"),
    ],
)
def test_invalid_spec_is_rejected_quoting_the_value(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        JumpFeatureSpec(**kwargs)  # type: ignore[arg-type]


def test_bad_closes_and_short_scaler_input_are_rejected() -> None:
    engine = JumpFeatureEngine(["A", "B"], SPEC)
    with pytest.raises(ValueError, match="2 positive numbers"):
        engine.update(np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match=r"n_obs >= 2.*\(1, 3\)"):
        FeatureScaler.fit(np.ones((1, 3)))
    with pytest.raises(ValueError, match="finite"):
        FeatureScaler.fit(np.array([[1.0], [np.nan]]))
