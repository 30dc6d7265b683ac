"""A momentum equity sleeve: a stock-selection rule held as one synthetic asset.

The rule of the dynamic asset-allocation systems we compare with (time-series-of-ranks
momentum, Jegadeesh & Titman 1993; the "12-1" window of Asness, Moskowitz & Pedersen 2013),
made risk-adjusted: on the first session of every calendar month, each stock scores

    score_i = (log c_i[t-skip] - log c_i[t-lookback]) / (sqrt(252) * std(daily log returns
              from t-lookback to t-skip, ddof=1))

(12-1 months by default: ``lookback`` 252, ``skip`` 21 sessions), the ``top_k`` stocks with a
positive score are kept, ranked by score and then by symbol (so ties are deterministic), with
target weights proportional to their scores, summing to 1. The sleeve moves from its drifted
holdings toward that target with a turnover ``sum_i |new_i - old_i|`` (the backtest's one-way
turnover, :mod:`regime_trader.strategies.backtest`) of at most ``max_turnover``, spent first on
selling in full the names that left the target, weakest score first, then on moving the rest
toward it (:func:`capped_step`); entering from nothing or leaving to nothing (no positive score)
is not capped, because the sleeve is defined as fully invested whenever it holds anything.
Between rebalances it is a buy-and-hold: the holdings drift with prices.

Causal by construction: the decision at ``t`` reads closes up to ``t`` (the score even stops at
``t - skip``). Everything is vectorised over stocks; the only per-day work is one ring-buffer row
and one dot product. Scores use differences of log closes and ratios only, so multiplying a
stock's whole history by a constant leaves them unchanged (the strategies' scale contract).

**Survivorship.** The stock panel in ``../shared/data`` holds today's S&P 500 members only; a
sleeve's returns on it are not evidence of stock-selection skill (mechanics and speed only).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import pandas as pd

from regime_trader.strategies._checks import at_least, check_fields, checked

__all__ = [
    "MomentumParams",
    "MomentumSleeve",
    "capped_step",
    "momentum_scores",
    "select_top",
    "sell_priority",
]

TRADING_DAYS = 252


def _turnover_cap(name: str, value: float) -> None:
    if not (math.isfinite(value) and 0.0 < value <= 2.0):
        raise ValueError(f"{name} must be in (0, 2], got {value}")


@dataclass(frozen=True)
class MomentumParams:
    """The sleeve's rule (defaults: 12-1 month momentum over volatility, top 20, cap 0.5).

    Attributes
    ----------
    lookback : int, default 252
        Sessions from the first close of the window to today.
    skip : int, default 21
        Most recent sessions left out of the window (the short-term reversal month).
    top_k : int, default 20
        Stocks held at most (fewer when fewer scores are positive).
    max_turnover : float, default 0.5
        Largest ``sum_i |new_i - old_i|`` of the sleeve's own weights per rebalance, in (0, 2].
    """

    lookback: int = checked(252, at_least(3))
    skip: int = checked(21, at_least(0))
    top_k: int = checked(20, at_least(1))
    max_turnover: float = checked(0.5, _turnover_cap)

    def __post_init__(self) -> None:
        check_fields(self)
        if self.lookback - self.skip < 2:
            raise ValueError(
                f"lookback - skip must leave at least 2 returns, got {self.lookback} - {self.skip}"
            )


def momentum_scores(log_closes: np.ndarray, skip: int) -> np.ndarray:
    """Risk-adjusted momentum per stock from a window of log closes, oldest row first.

    Parameters
    ----------
    log_closes : ndarray of shape (lookback + 1, n_stocks)
        Log closes from ``t - lookback`` to ``t``.
    skip : int
        The last ``skip`` rows are not used.

    Returns
    -------
    ndarray of shape (n_stocks,)
        Log return over the window divided by its annualised volatility; NaN where the
        volatility is zero (a flat price: no information).
    """
    window = log_closes[: log_closes.shape[0] - skip]
    momentum = window[-1] - window[0]
    vol = np.diff(window, axis=0).std(axis=0, ddof=1) * math.sqrt(TRADING_DAYS)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(vol > 0, momentum / np.where(vol > 0, vol, 1.0), np.nan)


def select_top(scores: np.ndarray, symbol_rank: np.ndarray, top_k: int) -> np.ndarray:
    """Target weights: the ``top_k`` positive scores (ties by symbol), proportional to score.

    Parameters
    ----------
    scores : ndarray of shape (n_stocks,)
    symbol_rank : ndarray of shape (n_stocks,)
        Each stock's position in the alphabetical order of the symbols (the tie-break).
    top_k : int

    Returns
    -------
    ndarray of shape (n_stocks,)
        Summing to 1, or all zero when no score is positive.
    """
    valid = np.isfinite(scores) & (scores > 0)
    keyed = np.where(valid, scores, -np.inf)
    order = np.lexsort((symbol_rank, -keyed))  # primary key last: score down, then symbol up
    chosen = order[: min(top_k, int(valid.sum()))]
    target = np.zeros(len(scores))
    if chosen.size:
        target[chosen] = scores[chosen] / scores[chosen].sum()
    return target


def capped_step(
    old: np.ndarray,
    target: np.ndarray,
    max_turnover: float,
    sell_order: np.ndarray | None = None,
) -> np.ndarray:
    """Move from ``old`` toward ``target`` within turnover ``max_turnover``, exits first.

    Parameters
    ----------
    old, target : ndarray of shape (n_stocks,)
        Non-negative weights, each summing to 1 or all zero.
    max_turnover : float
        Largest ``sum_i |new_i - old_i|``.
    sell_order : ndarray of shape (n_stocks,), optional
        The exits are sold in increasing ``sell_order`` (ties, and None, in column order);
        the sleeve passes :func:`sell_priority`, weakest score first.

    Returns
    -------
    ndarray of shape (n_stocks,)
        Non-negative, summing to 1; ``target`` itself when it is within the cap, or when
        ``old`` or ``target`` is empty (entering or leaving is not capped).

    Notes
    -----
    The budget goes first to the *exits*, the names held and not in the target: they are
    sold in full, one after another in ``sell_order`` (the last one that fits in part), and
    the proceeds buy the target's names in proportion to what each lacks. Selling ``w`` and
    buying ``w`` costs ``2 w`` of turnover, so one rebalance sells up to ``max_turnover / 2``
    of exits. The budget left then blends every weight toward the target,
    ``x + a (target - x)`` with ``a = min(1, left / sum|target - x|)``. Each weight only
    moves toward its target in both phases, so the turnover is their sum: the cap, when
    it binds. While the target and the order stay, an exit is gone within
    ``ceil(2 S / max_turnover)`` rebalances, ``S`` the weight of the exits sold before it
    and its own (drift aside).

    Why this rule: one blend of every weight (the rule before) sells each exit by the same
    fraction, so a name that left the top ``k`` decays geometrically and is never gone --
    on the 399-stock panel with ``top_k`` 20 the sleeve held a median of 200 names, 179 of
    them outside the target (``benchmarks/sleeve_tail.py``). Selling whole names ends the
    tail; the order decides who waits when the exits exceed the budget. Smallest first
    starves a large exit behind each month's new small ones (on the same panel one
    stayed outside the target for 22 rebalances, against 5 weakest first); oldest first
    would need a per-name age in the state. Weakest score first needs no
    state, sells what the ranking rejects most clearly, and makes the names just below
    the cut wait (the likeliest to come back); no ``min_weight`` is needed, since at most
    one exit is ever held in part.
    """
    if old.sum() <= 0 or target.sum() <= 0:
        return target.copy()
    if float(np.abs(target - old).sum()) <= max_turnover:
        return target.copy()
    sold = _exits_sold(old, target, max_turnover / 2.0, sell_order)
    proceeds = float(sold.sum())
    step = old - sold
    if proceeds > 0:
        lack = np.maximum(target - old, 0.0)
        # lack.sum() >= the exits' weight >= proceeds: no buy passes its target (the max()
        # only guards rounding).
        step = step + proceeds * lack / max(float(lack.sum()), proceeds)
    left = max_turnover - 2.0 * proceeds
    remaining = float(np.abs(target - step).sum())
    if remaining <= left:
        return target.copy()
    if left > 0:
        step = step + (left / remaining) * (target - step)
    return np.asarray(step / step.sum())


def _exits_sold(
    old: np.ndarray, target: np.ndarray, budget: float, sell_order: np.ndarray | None
) -> np.ndarray:
    """How much of each exit (held, not in ``target``) to sell: in order, ``budget`` in all."""
    exits = np.flatnonzero((old > 0) & (target <= 0))
    if sell_order is not None:
        exits = exits[np.argsort(sell_order[exits], kind="stable")]
    weights = old[exits]
    before = np.cumsum(weights) - weights
    sold = np.zeros_like(old)
    sold[exits] = np.clip(budget - before, 0.0, weights)
    return sold


def sell_priority(scores: np.ndarray, symbol_rank: np.ndarray) -> np.ndarray:
    """Each stock's place in the selling order: lowest score first, no score (NaN) before all.

    The reverse of :func:`select_top`'s preference, ties included (the last symbol goes
    first), so of two tied names the one selection keeps is also the one kept longer.

    Returns
    -------
    ndarray of int of shape (n_stocks,)
        A permutation of ``0..n_stocks-1``: 0 is sold first.
    """
    keyed = np.where(np.isnan(scores), -np.inf, scores)
    order = np.lexsort((-symbol_rank, keyed))  # primary key last: score up, then symbol down
    priority = np.empty(len(scores), dtype=int)
    priority[order] = np.arange(len(scores))
    return priority


class MomentumSleeve:
    """The sleeve's holdings and daily return, updated online one bar at a time.

    skfolio-like: the rule in ``__init__`` (:class:`MomentumParams`), the state it has learnt
    in attributes ending in ``_``.

    Parameters
    ----------
    symbols : sequence of str
        The stocks, in the column order of the closes given to :meth:`update`.
    params : MomentumParams, optional

    Attributes
    ----------
    holdings_ : ndarray of shape (n_stocks,)
        Weights at the last close (after that day's rebalance), summing to 1 or all zero.
    rebalanced_ : bool
        Whether the last update was a rebalance (the first session of a month with a full
        window).
    turnover_ : float
        ``sum_i |new_i - drifted_i|`` of the last update (0 between rebalances).
    """

    def __init__(self, symbols: Sequence[str], params: MomentumParams | None = None) -> None:
        self.symbols = [str(s) for s in symbols]
        self.params = params or MomentumParams()
        n = len(self.symbols)
        self._rank = np.argsort(np.argsort(np.array(self.symbols), kind="stable"), kind="stable")
        self.log_closes_ = np.zeros((self.params.lookback + 1, n))
        self.n_seen_ = 0
        self.holdings_ = np.zeros(n)
        self.last_close_: np.ndarray | None = None
        self.last_date_: pd.Timestamp | None = None
        self.rebalanced_ = False
        self.turnover_ = 0.0

    @property
    def invested(self) -> bool:
        """Whether the sleeve holds anything at the last close."""
        return bool(self.holdings_.sum() > 0)

    def update(self, date: pd.Timestamp, closes: np.ndarray) -> float:
        """Take the close of ``date``; return the sleeve's simple return since the last close.

        The return is earned by the holdings of the previous close (0 when it held nothing);
        then the holdings drift, and on the first session of a month they are rebalanced.
        """
        ret = 0.0
        if self.last_close_ is not None and self.invested:
            grown = self.holdings_ * (closes / self.last_close_)
            ret = float(grown.sum()) - 1.0
            self.holdings_ = grown / grown.sum()
        self.log_closes_[self.n_seen_ % self.log_closes_.shape[0]] = np.log(closes)
        self.n_seen_ += 1
        new_month = self.last_date_ is not None and (date.year, date.month) != (
            self.last_date_.year,
            self.last_date_.month,
        )
        self.rebalanced_ = new_month and self.n_seen_ >= self.log_closes_.shape[0]
        self.turnover_ = 0.0
        if self.rebalanced_:
            self._rebalance()
        self.last_close_, self.last_date_ = closes, date
        return ret

    def window(self) -> np.ndarray:
        """The ring buffer's log closes oldest first, shape (lookback + 1, n_stocks)."""
        return np.roll(self.log_closes_, -(self.n_seen_ % self.log_closes_.shape[0]), axis=0)

    def scores(self) -> np.ndarray:
        """Today's scores (meaningful once ``lookback + 1`` closes were seen)."""
        return momentum_scores(self.window(), self.params.skip)

    def _rebalance(self) -> None:
        scores = self.scores()
        target = select_top(scores, self._rank, self.params.top_k)
        order = sell_priority(scores, self._rank)
        new = capped_step(self.holdings_, target, self.params.max_turnover, order)
        self.turnover_ = float(np.abs(new - self.holdings_).sum())
        self.holdings_ = new

    def state_dict(self) -> dict[str, Any]:
        """Arrays and scalars only (no pickle): what :meth:`from_state` reads."""
        return {
            "log_closes": self.log_closes_,
            "n_seen": self.n_seen_,
            "holdings": self.holdings_,
            "last_close": self.last_close_,
            "last_date": None if self.last_date_ is None else self.last_date_.isoformat(),
            "rebalanced": self.rebalanced_,
            "turnover": self.turnover_,
        }

    @classmethod
    def from_state(
        cls, symbols: Sequence[str], params: MomentumParams, state: dict[str, Any]
    ) -> Self:
        """The sleeve :meth:`state_dict` was saved from (arrays as ndarrays or lists)."""
        sleeve = cls(symbols, params)
        log_closes = np.asarray(state["log_closes"], dtype=float)
        if log_closes.shape != sleeve.log_closes_.shape:
            raise ValueError(
                f"sleeve state has a window of shape {log_closes.shape}, "
                f"expected {sleeve.log_closes_.shape}"
            )
        sleeve.log_closes_ = log_closes.copy()
        sleeve.n_seen_ = int(state["n_seen"])
        sleeve.holdings_ = np.asarray(state["holdings"], dtype=float).copy()
        if state["last_close"] is not None:
            sleeve.last_close_ = np.asarray(state["last_close"], dtype=float).copy()
        last = state["last_date"]
        sleeve.last_date_ = None if last is None else pd.Timestamp(last)
        sleeve.rebalanced_ = bool(state["rebalanced"])
        sleeve.turnover_ = float(state["turnover"])
        return sleeve
