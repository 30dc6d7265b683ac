"""The dashboard's pure parts: realised risk contributions, the next run, the charts."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

import numpy as np
import pandas as pd
import pytest

from regime_trader.service.alpaca_parsing import BrokerClock, SessionDay
from regime_trader.service.dashboard import charts
from regime_trader.service.dashboard.risk import realised_risk
from regime_trader.service.dashboard.schedule import NEW_YORK, next_run

# ----------------------------------------------------------------------------- realised risk


def _closes(n: int = 80, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    returns = rng.multivariate_normal(
        [0.0003, 0.0001, 0.0002],
        [[1e-4, -2e-5, 1e-5], [-2e-5, 4e-5, 5e-6], [1e-5, 5e-6, 6e-5]],
        size=n,
    )
    prices = 100 * np.cumprod(1 + returns, axis=0)
    return pd.DataFrame(
        prices, index=pd.bdate_range("2024-01-01", periods=n), columns=["SPY", "TLT", "GLD"]
    )


def test_realised_contributions_sum_to_the_variance_of_the_held_portfolio() -> None:
    closes = _closes()
    weights = {"SPY": 0.3, "TLT": 0.4, "GLD": 0.2}  # 10% cash
    risk = realised_risk(weights, closes, window=63)

    # A direct computation: the variance of the held portfolio's own daily returns.
    returns = closes.pct_change().dropna().iloc[-63:]
    portfolio = returns.to_numpy() @ np.array([0.3, 0.4, 0.2])
    assert risk.variance == pytest.approx(portfolio.var(ddof=1), rel=1e-12)
    assert sum(risk.contributions) == pytest.approx(risk.variance, rel=1e-12)
    assert sum(risk.shares) == pytest.approx(1.0, rel=1e-12)
    # Each contribution is w_i cov(r_i, r_p): the asset's covariance with the portfolio.
    for i, symbol in enumerate(risk.symbols):
        cov = np.cov(returns[symbol].to_numpy(), portfolio, ddof=1)[0, 1]
        assert risk.contributions[i] == pytest.approx(weights[symbol] * cov, rel=1e-10)
    assert (risk.n_returns, risk.last) == (63, str(closes.index[-1].date()))
    assert risk.first == str(closes.index[-63].date())
    assert risk.annual_volatility == pytest.approx(np.sqrt(252 * risk.variance))


def test_realised_risk_of_cash_is_zero_and_short_history_is_refused() -> None:
    closes = _closes()
    cash = realised_risk({}, closes)
    assert cash.variance == 0.0 and cash.shares == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="at least 2 returns, got 1"):
        realised_risk({"SPY": 1.0}, closes.iloc[:2])
    with pytest.raises(ValueError, match="positive numbers"):
        realised_risk({"SPY": 1.0}, closes.assign(SPY=np.nan))


# ----------------------------------------------------------------------------- next run


def _sessions(*days: date) -> list[SessionDay]:
    return [
        SessionDay(
            d,
            datetime.combine(d, time(9, 30), tzinfo=NEW_YORK),
            datetime.combine(d, time(16, 0), tzinfo=NEW_YORK),
        )
        for d in days
    ]


def _clock(when: datetime) -> BrokerClock:
    return BrokerClock(when, True, when + timedelta(days=1), when + timedelta(hours=1))


MON, TUE, THU = (
    date(2024, 11, 25),
    date(2024, 11, 26),
    date(2024, 11, 29),
)  # THU: after Thanksgiving
TEN = time(10, 0)


@pytest.mark.parametrize(
    ("now", "done", "sessions", "expected", "due"),
    [
        (time(8, 0), False, (MON, TUE), datetime(2024, 11, 25, 10, 0), False),  # later today
        (time(11, 0), False, (MON, TUE), datetime(2024, 11, 25, 10, 0), True),  # missed, open
        (time(11, 0), True, (MON, TUE), datetime(2024, 11, 26, 10, 0), False),  # done: tomorrow
        (time(17, 0), False, (MON, TUE), datetime(2024, 11, 26, 10, 0), False),  # closed
    ],
    ids=["later-today", "due-now", "done-today", "after-the-close"],
)
def test_the_next_run_follows_the_broker_calendar(
    now: time, done: bool, sessions: tuple[date, ...], expected: datetime, due: bool
) -> None:
    clock = _clock(datetime.combine(MON, now, tzinfo=NEW_YORK))
    run = next_run(clock, _sessions(*sessions), TEN, done_today=done)
    assert run is not None
    assert (run.at, run.due_now) == (expected.replace(tzinfo=NEW_YORK), due)
    assert run.timezone == "America/New_York"
    assert run.describe().endswith("10:00 America/New_York") or "due now" in run.describe()


def test_a_holiday_is_skipped_and_no_session_left_says_so() -> None:
    wednesday_evening = datetime(2024, 11, 27, 18, 0, tzinfo=NEW_YORK)
    # Thanksgiving (Thursday 28th) is not a session: the calendar goes to Friday.
    run = next_run(_clock(wednesday_evening), _sessions(THU), TEN, done_today=True)
    assert run is not None and run.at.date() == THU
    assert run.describe() == "2024-11-29 10:00 America/New_York"
    assert next_run(_clock(wednesday_evening), [], TEN, done_today=True) is None


# ----------------------------------------------------------------------------- charts


def test_percent_labels_and_round_ticks() -> None:
    assert charts.percent(0.025, 0.025) == "2.5%"
    assert charts.percent(-0.3, 0.1) == "\N{MINUS SIGN}30%"
    assert charts.percent(0.1234, 0.0001) == "12.34%"
    assert charts.percent(-0.00001) == charts.percent(-0.0) == "0%"
    ticks = charts.nice_ticks(65.2, 82.1)
    assert ticks[0] <= 65.2 and ticks[-1] >= 82.1
    assert np.allclose(np.diff(ticks), 5.0)
    assert charts.nice_ticks(0.0, 1.0) == [0.0, 0.25, 0.5, 0.75, 1.0]
    with pytest.raises(ValueError, match="finite"):
        charts.nice_ticks(0.0, float("nan"))


def test_a_line_chart_draws_every_point_inside_its_axes_and_escapes_labels() -> None:
    days = [date(2024, 3, 1) + timedelta(days=i) for i in range(10)]
    lines = [
        charts.Line("paper", "Paper <b>account</b>", [(d, 0.01 * i) for i, d in enumerate(days)]),
        charts.Line(
            "erc_static", "Static ERC", [(d, -0.02 + 0.003 * i) for i, d in enumerate(days)]
        ),
        charts.Line("buy_hold", "Buy-and-hold", []),
    ]
    svg = str(charts.line_chart("equity", "t", lines, empty="none"))
    assert 'data-series="paper" data-points="10"' in svg
    assert 'data-series="erc_static" data-points="10"' in svg
    assert 'data-series="buy_hold"' not in svg  # an empty series draws nothing
    assert "<b>" not in svg and "&lt;b&gt;" in svg
    assert f'stroke="{charts.COLOURS["paper"]}"' in svg
    width, height = charts.WIDE
    for points in re.findall(r' points="([^"]+)"', svg):
        for pair in points.split():
            x, y = (float(v) for v in pair.split(","))
            assert 0 <= x <= width and 0 <= y <= height
    assert "\N{MINUS SIGN}" in svg  # a percent axis below zero


def test_an_empty_chart_says_why() -> None:
    svg = str(charts.bar_chart("risk", "t", [], [], empty="needs 3 closes"))
    assert "needs 3 closes" in svg and "data-series" not in svg


def test_every_series_has_one_colour_on_every_chart() -> None:
    assert charts.COLOURS["held"] == charts.COLOURS["paper"]  # what the account holds is its blue
    distinct = [charts.COLOURS[k] for k in ("paper", "target", "erc_static", "buy_hold", "price")]
    assert len(set(distinct)) == len(distinct)
    regimes = {charts.regime_colour(label) for label in ("calm", "normal", "elevated", "stress")}
    assert not regimes & set(charts.COLOURS.values())  # no regime looks like a series
