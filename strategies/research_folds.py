"""Walk-forward folds inside a development window, with a purge and an embargo.

The strategies learn online and causally: the decision of day t uses bars up to t only, and
every bar is seen once, in order. So one walk-forward run through the development window is at
the same time the training of every fold and the out-of-sample path of every fold: the returns
the run earns inside test block k were decided by a strategy that had learned from everything
before them and nothing after. The folds therefore do not re-run anything; they only say which
of the run's daily returns each fold *scores*. Nothing here may reach a bar after the
development window's end: the caller cuts the prices at that date before any strategy sees them
(:func:`development_prices`).

Layout, on the positions 0..n-1 of the run's return days (a return is indexed by the day it is
earned; with a lag of L sessions the return of day t was decided at the close of t - L):

``warm-up``
    the first ``warmup_days`` returns are scored by no fold: the strategy has learned too
    little to be judged (the regime model may still be warming up and holding cash);
``test blocks``
    the remaining returns are cut into ``n_folds`` contiguous blocks of nearly equal length
    (the first ``rest`` blocks are one day longer), in time order;
``purge``
    the first ``purge_days`` returns of *every* block are not scored. With ``purge_days``
    equal to the lag L these are exactly the returns earned by decisions taken before the block
    began: a decision's "label" (its interval from decision to earned return) straddles the
    block's start, which is what purging removes (Lopez de Prado 2018, section 7.4.1). After
    the purge a fold's score is the outcome of decisions taken inside its own block only;
``embargo``
    the first ``embargo_days`` returns of every block that *follows another block* are not
    scored either (they come before the purge). Daily returns and the strategy's slow state
    (EWMA covariances, smoothed stress, holdings) are serially dependent, so the days right
    after a test block are partly predictable from its last days; embargoing them keeps the
    scores of adjacent folds closer to independent, which the fold-to-fold dispersion and the
    CSCV blocks assume (Lopez de Prado 2018, section 7.4.2, suggests about 1% of the sample).

The strategy still *sees* the warm-up, purged and embargoed days (it must: it learns online and
skipping a bar would break its recursions); they are only left out of every fold's score.

References
----------
Lopez de Prado, M. (2018). *Advances in Financial Machine Learning*, ch. 7 (purging and
embargo) and ch. 12 (walk-forward backtests). Wiley.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["Fold", "FoldPlan", "development_prices", "plan_folds", "return_days"]


@dataclass(frozen=True)
class Fold:
    """One test block and the returns it scores, as positions in the run's return days.

    Attributes
    ----------
    number : int
        0-based, in time order.
    block_start, block_stop : int
        The block's positions ``[block_start, block_stop)``.
    embargoed : int
        Returns at the block's start left out because they follow the previous block.
    purged : int
        Returns after the embargo left out because they were decided before the block.
    """

    number: int
    block_start: int
    block_stop: int
    embargoed: int
    purged: int

    @property
    def scored_start(self) -> int:
        """First scored position."""
        return self.block_start + self.embargoed + self.purged

    @property
    def scored(self) -> slice:
        """The scored positions ``[scored_start, block_stop)``."""
        return slice(self.scored_start, self.block_stop)

    @property
    def n_scored(self) -> int:
        return self.block_stop - self.scored_start


@dataclass(frozen=True)
class FoldPlan:
    """The folds of a development window, bound to its return days.

    Attributes
    ----------
    days : DatetimeIndex of shape (n_days,)
        The return days of the walk-forward run through the development window.
    folds : tuple of Fold
    warmup_days, purge_days, embargo_days : int
        The settings the plan was made with.
    """

    days: pd.DatetimeIndex
    folds: tuple[Fold, ...]
    warmup_days: int
    purge_days: int
    embargo_days: int

    def scored_mask(self) -> np.ndarray:
        """Boolean mask of shape (n_days,): True on the days some fold scores."""
        mask = np.zeros(len(self.days), dtype=bool)
        for fold in self.folds:
            mask[fold.scored] = True
        return mask

    def scored_days(self) -> pd.DatetimeIndex:
        """Every scored day, in time order (the union of the folds)."""
        return self.days[self.scored_mask()]

    def fold_days(self, fold: Fold) -> pd.DatetimeIndex:
        return self.days[fold.scored]

    def split(self, returns: pd.Series) -> list[pd.Series]:
        """Cut a run's returns into the folds' scored returns.

        Parameters
        ----------
        returns : Series
            Indexed by the plan's return days (extra days are ignored, missing ones refused).

        Raises
        ------
        ValueError
            If a scored day is missing from ``returns``.
        """
        missing = self.scored_days().difference(pd.DatetimeIndex(returns.index))
        if len(missing):
            raise ValueError(
                f"returns lack {len(missing)} scored days of the fold plan "
                f"(first {missing[0].date()})"
            )
        return [returns.loc[self.fold_days(fold)] for fold in self.folds]


def plan_folds(
    days: pd.DatetimeIndex,
    *,
    n_folds: int,
    warmup_days: int,
    purge_days: int,
    embargo_days: int,
    min_scored_days: int = 20,
) -> FoldPlan:
    """Cut the return days of a development run into walk-forward test blocks.

    Parameters
    ----------
    days : DatetimeIndex of shape (n_days,)
        The run's return days, strictly increasing (see :func:`return_days`).
    n_folds : int
        Number of test blocks, >= 1.
    warmup_days : int
        Leading returns scored by no fold, >= 0.
    purge_days : int
        Returns left out at the start of every block, >= 0 (the lag, 1, removes exactly the
        returns decided before the block).
    embargo_days : int
        Further returns left out at the start of every block after the first, >= 0.
    min_scored_days : int, default 20
        A fold must score at least this many days.

    Returns
    -------
    FoldPlan

    Raises
    ------
    ValueError
        For a negative setting, non-increasing days, or blocks too short to score
        ``min_scored_days`` (the message gives the numbers).
    """
    for name, value in (
        ("warmup_days", warmup_days),
        ("purge_days", purge_days),
        ("embargo_days", embargo_days),
    ):
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    if n_folds < 1:
        raise ValueError(f"n_folds must be >= 1, got {n_folds}")
    if min_scored_days < 2:
        raise ValueError(f"min_scored_days must be >= 2, got {min_scored_days}")
    if not days.is_monotonic_increasing or not days.is_unique:
        raise ValueError("days must be strictly increasing")
    usable = len(days) - warmup_days
    shortest = usable // n_folds - embargo_days - purge_days
    if shortest < min_scored_days:
        raise ValueError(
            f"{len(days)} return days less a warm-up of {warmup_days} leave {usable} for "
            f"{n_folds} folds: the shortest would score {shortest} days after an embargo of "
            f"{embargo_days} and a purge of {purge_days} (need >= {min_scored_days}); use "
            "fewer folds, a shorter warm-up or a longer development window"
        )
    base, rest = divmod(usable, n_folds)
    folds = []
    start = warmup_days
    for k in range(n_folds):
        stop = start + base + (1 if k < rest else 0)
        folds.append(
            Fold(
                number=k,
                block_start=start,
                block_stop=stop,
                embargoed=embargo_days if k > 0 else 0,
                purged=purge_days,
            )
        )
        start = stop
    return FoldPlan(days, tuple(folds), warmup_days, purge_days, embargo_days)


def development_prices(prices: pd.DataFrame, dev_end: pd.Timestamp) -> pd.DataFrame:
    """The prices a trial may use: every session up to and including ``dev_end``.

    Parameters
    ----------
    prices : DataFrame of shape (n_days, n_assets)
        Daily closes indexed by session.
    dev_end : Timestamp
        Last session of the development window.

    Raises
    ------
    ValueError
        If no session falls on or before ``dev_end``.
    """
    kept = prices.loc[: pd.Timestamp(dev_end)]
    if kept.empty:
        raise ValueError(f"no session on or before the development end {dev_end.date()}")
    return kept


def return_days(
    sessions: pd.Index, start: pd.Timestamp, end: pd.Timestamp, lag: int = 1
) -> pd.DatetimeIndex:
    """The days a walk-forward run trading from ``start`` to ``end`` earns a return.

    As :func:`regime_trader.strategies.backtest.run_backtest` does: the first decision is taken
    at the first session on or after ``start`` and earns its return ``lag`` sessions later; the
    last return is earned on the last session on or before ``end``.

    Raises
    ------
    ValueError
        If the window holds no return day.
    """
    index = pd.DatetimeIndex(sessions)
    first = int(index.searchsorted(pd.Timestamp(start)))
    last = int(index.searchsorted(pd.Timestamp(end), side="right"))
    days = index[first + lag : last]
    if len(days) == 0:
        raise ValueError(f"no return day between {start.date()} and {end.date()} (lag {lag})")
    return days
