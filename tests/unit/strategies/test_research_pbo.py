"""PBO by CSCV: a direct computation, pure-noise trials near 1/2, a dominant trial near 0."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from regime_trader.strategies.research_pbo import probability_of_backtest_overfitting


def _direct_logits(m: np.ndarray, s: int) -> list[float]:
    """The paper's procedure written out: concatenate the chosen blocks, rank, take the logit."""
    t, n = m.shape
    rows = t // s
    m = m[t - rows * s :]
    blocks = [m[i * rows : (i + 1) * rows] for i in range(s)]
    logits = []
    for members in itertools.combinations(range(s), s // 2):
        train = np.concatenate([blocks[i] for i in members])
        test = np.concatenate([blocks[i] for i in range(s) if i not in members])
        sr_train = train.mean(axis=0) / train.std(axis=0, ddof=1)
        sr_test = test.mean(axis=0) / test.std(axis=0, ddof=1)
        best = int(np.argmax(sr_train))
        w = stats.rankdata(sr_test)[best] / (n + 1)
        logits.append(float(np.log(w / (1 - w))))
    return logits


def test_cscv_equals_the_direct_computation() -> None:
    m = np.random.default_rng(0).normal(0.0002, 0.01, (203, 7))  # 203 = 6 * 33 + 5 rows
    result = probability_of_backtest_overfitting(m, n_blocks=6)
    direct = _direct_logits(m, 6)
    np.testing.assert_allclose(result.logits, direct, rtol=1e-9)
    assert result.pbo == pytest.approx(np.mean(np.array(direct) <= 0))
    assert (result.n_combinations, result.n_obs, result.n_trials) == (20, 198, 7)


def test_pure_noise_trials_overfit_half_the_time() -> None:
    # Without skill the in-sample best is a random trial out of sample: its rank is uniform and
    # PBO is 1/2 in expectation with an even N. One sample's PBO varies widely (sd ~0.2 here),
    # so average 150 samples: the standard error of the mean is ~0.017.
    pbos = [
        probability_of_backtest_overfitting(
            np.random.default_rng(seed).normal(0, 0.01, (200, 20)), n_blocks=8
        ).pbo
        for seed in range(150)
    ]
    assert np.mean(pbos) == pytest.approx(0.5, abs=0.06)


def test_a_truly_dominant_trial_does_not_overfit() -> None:
    m = np.random.default_rng(1).normal(0, 0.01, (1600, 30))
    m[:, 11] += 0.003  # an annualised Sharpe of ~4.8 against ~0 for the others
    result = probability_of_backtest_overfitting(m, n_blocks=16)
    assert result.n_combinations == 12870
    assert result.pbo == 0.0
    assert (result.best_in_sample == 11).all()
    assert result.prob_oos_loss == 0.0


@pytest.mark.parametrize(
    ("shape", "blocks", "message"),
    [
        ((100, 1), 4, "at least 2 trials"),
        ((100, 3), 5, "even number"),
        ((7, 3), 4, "blocks of at least 2 rows"),
    ],
)
def test_bad_inputs_are_refused(shape: tuple[int, int], blocks: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        probability_of_backtest_overfitting(np.zeros(shape), n_blocks=blocks)
