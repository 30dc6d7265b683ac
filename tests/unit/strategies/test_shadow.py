"""The shadow book: the backtest's arithmetic bar by bar, in pieces, restorable bit for bit."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from regime_trader.strategies.backtest import run_backtest
from regime_trader.strategies.registry import build_strategy
from regime_trader.strategies.shadow import ShadowBook, ShadowBookState

BENCHMARKS = ("erc_static", "buy_hold")


def _restored(book: ShadowBook) -> ShadowBook:
    """The book after a trip through JSON text, as the service stores it."""
    state = book.state()
    text = json.dumps(state.__dict__)
    data = json.loads(text)
    for name in ("held", "target", "closes"):
        data[name] = tuple(data[name])
    return ShadowBook.from_state(ShadowBookState(**data))


def _in_pieces(
    prices: pd.DataFrame, name: str, start: int, cuts: list[int], cost_bps: float
) -> pd.Series:
    """Start at row ``start``, then advance over pieces ending at each cut, restoring between."""
    symbols = list(prices.columns)
    book = ShadowBook(build_strategy(name, symbols, {}), cost_bps=cost_bps)
    book.start(prices.iloc[: start + 1])
    growth: dict[pd.Timestamp, float] = {}
    last = start
    for cut in [*cuts, len(prices)]:
        book = _restored(book)
        # Each piece repeats the last bar seen (and a few before it, which are ignored).
        for step in book.advance(prices.iloc[max(0, last - 3) : cut]):
            growth[step.date] = step.growth
        last = cut - 1
    return pd.Series(growth)


@pytest.mark.parametrize("name", BENCHMARKS)
@pytest.mark.parametrize("cost_bps", [0.0, 5.0])
def test_a_book_fed_in_pieces_and_restored_is_the_backtests_equity_bit_for_bit(
    synthetic_prices: pd.DataFrame, name: str, cost_bps: float
) -> None:
    prices = synthetic_prices.iloc[:400]
    start = 250
    expected = run_backtest(
        prices,
        build_strategy(name, list(prices.columns), {}),
        start=prices.index[start],
        cost_bps=cost_bps,
    ).strategy.equity

    got = _in_pieces(prices, name, start, cuts=[252, 253, 270, 271, 330, 399], cost_bps=cost_bps)

    assert list(got.index) == list(expected.index)
    assert got.to_numpy().tobytes() == expected.to_numpy().tobytes()


def _two_books_started_at_300(
    synthetic_prices: pd.DataFrame,
) -> tuple[pd.DataFrame, list[str], ShadowBook, ShadowBook]:
    """320 sessions, their symbols and two equal ERC books started on the first 301: one to
    advance on the prices as they are, one on a re-adjusted copy."""
    prices = synthetic_prices.iloc[:320]
    symbols = list(prices.columns)
    first, second = (ShadowBook(build_strategy("erc_static", symbols, {})) for _ in range(2))
    for book in (first, second):
        book.start(prices.iloc[:301])
    return prices, symbols, first, second


def test_a_piece_served_on_a_new_basis_changes_nothing(synthetic_prices: pd.DataFrame) -> None:
    """A 2:1 split re-adjusts every earlier close of a symbol by 0.5: same returns, same path."""
    prices, symbols, plain, split = _two_books_started_at_300(synthetic_prices)
    readjusted = prices.iloc[300:].copy()
    readjusted[symbols[0]] *= 0.5  # exact in binary: the returns are the same bits

    steps_plain = plain.advance(prices.iloc[300:])
    steps_split = split.advance(readjusted)

    assert [s.growth for s in steps_split] == [s.growth for s in steps_plain]
    assert split.target_.tobytes() == plain.target_.tobytes()
    assert split.closes_ == plain.closes_  # the book stays on the basis it started on


def test_a_dividend_readjustment_moves_the_path_by_rounding_only(
    synthetic_prices: pd.DataFrame,
) -> None:
    prices, symbols, plain, paid = _two_books_started_at_300(synthetic_prices)
    readjusted = prices.iloc[300:].copy()
    readjusted.loc[: readjusted.index[5], symbols[1]] *= 0.987  # ex-date after the 6th row

    plain_growth = [s.growth for s in plain.advance(prices.iloc[300:])]
    paid_growth = [s.growth for s in paid.advance(readjusted)]

    # Only the ex-date's return differs (it is the total return now); the rest is the same.
    assert paid_growth[:4] == pytest.approx(plain_growth[:4], rel=1e-14)
    assert paid_growth[5] != pytest.approx(plain_growth[5], rel=1e-9)


def test_buy_and_hold_grows_with_the_equity_asset(synthetic_prices: pd.DataFrame) -> None:
    prices = synthetic_prices.iloc[:260]
    book = ShadowBook(build_strategy("buy_hold", list(prices.columns), {}))
    book.start(prices.iloc[:200])
    steps = book.advance(prices.iloc[199:])
    equity = prices.iloc[199:, 0]
    assert steps[-1].growth == pytest.approx(equity.iloc[-1] / equity.iloc[0], rel=1e-12)
    assert [s.turnover for s in steps[1:]] == [0.0] * (len(steps) - 1)


def test_a_piece_without_the_last_bar_is_refused(synthetic_prices: pd.DataFrame) -> None:
    prices = synthetic_prices.iloc[:260]
    book = ShadowBook(build_strategy("buy_hold", list(prices.columns), {}))
    book.start(prices.iloc[:200])
    with pytest.raises(ValueError, match="do not repeat the book's last bar"):
        book.advance(prices.iloc[201:])
    assert book.advance(prices.iloc[150:200]) == []  # nothing new: nothing done


def test_misuse_is_refused(synthetic_prices: pd.DataFrame) -> None:
    symbols = list(synthetic_prices.columns)
    book = ShadowBook(build_strategy("buy_hold", symbols, {}))
    with pytest.raises(ValueError, match="advance before start"):
        book.advance(synthetic_prices)
    with pytest.raises(ValueError, match="has no state"):
        book.state()
    with pytest.raises(ValueError, match="cost_bps"):
        ShadowBook(build_strategy("buy_hold", symbols, {}), cost_bps=-1.0)
    book.start(synthetic_prices.iloc[:10])
    with pytest.raises(ValueError, match="started already"):
        book.start(synthetic_prices.iloc[:20])
    state = book.state()
    with pytest.raises(ValueError, match="held: 2 values for 3 symbols"):
        ShadowBook.from_state(ShadowBookState(**{**state.__dict__, "held": state.held[:2]}))
    assert np.isclose(sum(state.target), 1.0)
