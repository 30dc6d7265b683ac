"""Fuzzing every input boundary: broker JSON, bars, configuration and price files.

The property, for each boundary: a malformed input ends in the project's own exception
(:class:`~regime_trader.service.exceptions.InvalidInputError` and subclasses, :class:`ConfigError`,
:class:`PriceFileError`) whose message names the field, symbol or line -- never another
exception type -- and a valid input never raises.

Inputs start from valid ones (the broker answers recorded in
``tests/unit/service/alpaca_responses.json``, generated bar frames, TOML tables and CSV files)
and get one mutation each, so the test knows what the error must name. Chaos variants feed
unstructured input and only check the exception type and a non-empty message.

The bugs this file found are fixed; their cases stay as regression tests at the end of each
section (they were strict xfails until the fix).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from functools import partial
from pathlib import Path
from typing import Any, Literal, get_origin

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from regime_trader.service import alpaca_parsing as parsing
from regime_trader.service.alpaca_errors import error_response_to_exception
from regime_trader.service.alpaca_parsing import NEW_YORK, SessionDay
from regime_trader.service.config import DERIVED_FIELDS, ConfigError, Settings, load_settings
from regime_trader.service.exceptions import InvalidInputError, RegimeTraderError
from regime_trader.service.marketdata import check_bars
from regime_trader.service.pricefile import PriceFileError, load_prices
from tests.support.alpaca_recorded import RECORDED, recorded

# The whole module should take about 30 s; each property gets its share of examples.


def fuzz(max_examples: int) -> settings:
    """Hypothesis settings of one property: its share of the budget, no per-example deadline."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


def _names(field: str, message: str) -> bool:
    """Whether ``message`` names ``field`` as a word (``'o'`` must not match ``order``)."""
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(field)}(?![A-Za-z0-9_])", message) is not None


# ============================================================================ broker JSON

# What each parser reads: field -> kind. Fields not listed are ignored by the parser.
TEXT, FLAG, MONEY, OPT_MONEY, INSTANT, OPT_INSTANT = (
    "text",
    "flag",
    "money",
    "opt_money",
    "instant",
    "opt_instant",
)
DAY, WALL, NUMBER, OPT_NUMBER = "day", "wall", "number", "opt_number"
OPT_FLAG = "opt_flag"  # a boolean, or absent/null (read as set: fail closed)
AMOUNT, OPT_AMOUNT, SIDE = "amount", "opt_amount", "side"  # orders: >= 0; buy or sell

ACCOUNT = {"equity": MONEY, "cash": MONEY, "buying_power": MONEY, "status": TEXT}
ACCOUNT |= {"trading_blocked": FLAG, "account_blocked": OPT_FLAG}
ACCOUNT |= {"trade_suspended_by_user": OPT_FLAG, "non_marginable_buying_power": OPT_MONEY}
CLOCK = {"timestamp": INSTANT, "is_open": FLAG, "next_open": INSTANT, "next_close": INSTANT}
ASSET = {"symbol": TEXT, "tradable": FLAG, "fractionable": FLAG, "status": TEXT}
ORDER = {
    **dict.fromkeys(("id", "client_order_id", "symbol", "type", "time_in_force", "status"), TEXT),
    "side": SIDE,
    "qty": OPT_AMOUNT,
    "notional": OPT_AMOUNT,
    "filled_qty": AMOUNT,
    "filled_avg_price": OPT_AMOUNT,
    "submitted_at": OPT_INSTANT,
    "filled_at": OPT_INSTANT,
}
POSITION = {"symbol": TEXT, "qty": MONEY}
CALENDAR_DAY = {"date": DAY, "open": WALL, "close": WALL}
BAR = {"t": INSTANT, **dict.fromkeys("ohlcvn", NUMBER), "vw": OPT_NUMBER}

Parser = tuple[Callable[[Any], Any], str, dict[str, str]]  # (parser, shape, schema)
# Each parser with its shape ("object", "list" of objects, "bars"), schema and the recorded
# answers it reads.
READERS: list[tuple[Callable[[Any], Any], str, dict[str, str], tuple[str, ...]]] = [
    (parsing.account_to_broker_account, "object", ACCOUNT, ("account",)),
    (parsing.clock_to_broker_clock, "object", CLOCK, ("clock_open", "clock_closed")),
    (parsing.asset_to_broker_asset, "object", ASSET, ("asset_fractionable", "asset_whole_shares")),
    (parsing.order_to_broker_order, "object", ORDER, ("order_filled", "order_accepted")),
    (parsing.order_list_to_broker_orders, "list", ORDER, ("orders",)),
    (parsing.positions_to_quantities, "list", POSITION, ("positions",)),
    (parsing.calendar_to_session_days, "list", CALENDAR_DAY, ("calendar",)),
    (parsing.bars_to_frame, "bars", BAR, ("bars_page_1", "bars_page_2")),
]
# recorded answer -> its parser, shape and schema
PARSERS: dict[str, Parser] = {
    name: (parser, shape, schema) for parser, shape, schema, names in READERS for name in names
}

NESTED_JUNK = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)
JUNK = st.one_of(
    st.sampled_from(
        [
            None,
            True,
            False,
            0,
            -1,
            2**70,
            1.5,
            -0.0,
            float("nan"),
            float("inf"),
            float("-inf"),
            "",
            " ",
            "abc",
            "NaN",
            "nan",
            "sNaN",
            "inf",
            "-Infinity",
            "1.2.3",
            "12abc",
            "$5",
            "1,000",
            "-12.50",
            "0",
            "1e3",
            "2024-01-03",
            "2024-01-03T10:00:00",
            "2024-01-03T10:00:00Z",
            "2024-02-30T10:00:00Z",
            "10/01/2024",
            "25:00",
            "9h30",
            [],
            {},
            ["1"],
            {"value": "1"},
        ]
    ),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzNIFA", min_size=1, max_size=8),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**20), max_value=10**20),
    NESTED_JUNK,
)


def _finite_decimal(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return False
    try:
        return Decimal(str(value)).is_finite()
    except InvalidOperation:
        return False


def _aware_instant(value: object) -> bool:
    if not isinstance(value, str) or not value:
        return False
    try:
        return datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


def _accepts(kind: str, value: object) -> bool | None:
    """Whether the parser must accept ``value`` for a field of ``kind`` (None: may go either way).

    A calendar wall time or date that parses may still be refused for its place (close not
    after open, dates not increasing): that is "either".
    """
    if kind == TEXT:
        return isinstance(value, str) and value != ""
    if kind == FLAG:
        return isinstance(value, bool)
    if kind == OPT_FLAG:
        return value is None or isinstance(value, bool)
    if kind == MONEY:
        return _finite_decimal(value)
    if kind == AMOUNT:
        return _finite_decimal(value) and Decimal(str(value)) >= 0
    if kind == OPT_AMOUNT:
        return value is None or (_finite_decimal(value) and Decimal(str(value)) >= 0)
    if kind == SIDE:
        return value in ("buy", "sell")
    if kind == OPT_MONEY:
        return value is None or _finite_decimal(value)
    if kind == INSTANT:
        return _aware_instant(value)
    if kind == OPT_INSTANT:
        return value is None or _aware_instant(value)
    if kind == NUMBER:  # range checks belong to check_bars; NaN passes here by design
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == OPT_NUMBER:
        return value is None or (isinstance(value, int | float) and not isinstance(value, bool))
    if kind in (DAY, WALL):
        if not isinstance(value, str) or not value:
            return False
        try:
            (date if kind == DAY else time).fromisoformat(value)
        except ValueError:
            return False
        return None
    raise AssertionError(kind)


Target = tuple[str, dict[str, Any], Callable[[Any], None]]


def _targets(raw: Any, shape: str) -> list[Target]:
    """Every object the parser reads: (label, the object, a setter replacing it in ``raw``)."""
    if shape == "object":
        return [("", raw, _ignore)]
    if shape == "list":
        return [(f"[{i}]", item, partial(raw.__setitem__, i)) for i, item in enumerate(raw)]
    return [
        (f"{symbol}[{i}]", bar, partial(bars.__setitem__, i))
        for symbol, bars in raw["bars"].items()
        for i, bar in enumerate(bars)
    ]


def _ignore(_value: Any) -> None:
    return None


def _parse(name: str, raw: Any) -> Any:
    parser, shape, _ = PARSERS[name]
    return parser(raw["bars"] if shape == "bars" else raw)


# JSON key -> attribute of the parsed record, where the names differ.
_ATTRIBUTE = {"type": "order_type"}


def _json_value(kind: str, value: Any) -> Any:
    """What a parser must make of a valid JSON ``value`` of ``kind``, computed directly."""
    if value is None:
        return None
    if kind in (MONEY, OPT_MONEY, AMOUNT, OPT_AMOUNT):
        return Decimal(str(value))
    if kind in (INSTANT, OPT_INSTANT):
        return pd.Timestamp(value).to_pydatetime()
    return value


def _expected_records(name: str, raw: Any) -> list[dict[str, Any]]:
    """Every record a recorded answer holds, as ``{attribute: value}`` from the JSON."""
    _, shape, schema = PARSERS[name]
    if shape == "bars":
        columns = {"o": "open", "h": "high", "l": "low", "c": "close", "v": "volume"}
        columns |= {"n": "trade_count", "vw": "vwap"}
        return [
            {
                "symbol": symbol,
                "date": pd.Timestamp(bar["t"]).tz_convert(NEW_YORK).date(),
                **{attr: float(bar[key]) for key, attr in columns.items()},
            }
            for symbol, bars in raw["bars"].items()
            for bar in bars
        ]
    if name == "calendar":
        return [
            {
                "date": date.fromisoformat(day["date"]),
                "open": datetime.combine(
                    date.fromisoformat(day["date"]), time.fromisoformat(day["open"]), NEW_YORK
                ),
                "close": datetime.combine(
                    date.fromisoformat(day["date"]), time.fromisoformat(day["close"]), NEW_YORK
                ),
            }
            for day in raw
        ]
    objects = [raw] if shape == "object" else list(raw)
    return [
        {_ATTRIBUTE.get(key, key): _json_value(kind, obj.get(key)) for key, kind in schema.items()}
        for obj in objects
    ]


def _parsed_records(name: str, parsed: Any) -> list[dict[str, Any]]:
    """The same view of what the parser returned."""
    expected_keys = _expected_records(name, RECORDED[name])[0].keys()
    if isinstance(parsed, pd.DataFrame):
        rows = parsed.to_dict("records")
        return [{k: (r[k].date() if k == "date" else r[k]) for k in expected_keys} for r in rows]
    if name == "positions":
        return [{"symbol": symbol, "qty": qty} for symbol, qty in parsed.items()]
    items = parsed if isinstance(parsed, list) else [parsed]
    return [{k: getattr(item, k) for k in expected_keys} for item in items]


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_every_recorded_answer_parses_to_the_values_it_holds(name: str) -> None:
    raw = recorded(name)
    parsed = _parse(name, raw)
    expected = _expected_records(name, RECORDED[name])
    assert expected, f"the recorded answer {name!r} holds no record"
    assert _parsed_records(name, parsed) == expected
    assert raw == RECORDED[name], "the parser changed its input"


@fuzz(400)
@given(data=st.data(), name=st.sampled_from(sorted(PARSERS)))
def test_a_mutated_broker_answer_is_refused_naming_the_field(
    data: st.DataObject, name: str
) -> None:
    _, shape, schema = PARSERS[name]
    raw = recorded(name)
    label, target, replace = data.draw(st.sampled_from(_targets(raw, shape)), label="target")
    op = data.draw(st.sampled_from(["drop", "junk", "junk", "extra", "container"]), label="op")
    key = data.draw(st.sampled_from(sorted(target)), label="key")
    kind = schema.get(key)
    expected: bool | None
    if op == "drop":
        del target[key]
        expected = kind is None or kind.startswith("opt_")
    elif op == "junk":
        value = data.draw(JUNK, label="value")
        target[key] = value
        expected = True if kind is None else _accepts(kind, value)
    elif op == "extra":
        target["zz_unexpected"] = data.draw(NESTED_JUNK, label="extra")
        expected = True
    else:
        junk = data.draw(JUNK.filter(lambda v: not isinstance(v, dict)), label="container")
        if shape == "object":
            raw = junk
        else:
            replace(junk)
        expected = False

    try:
        _parse(name, raw)
    except InvalidInputError as e:
        message = str(e)
        assert message.strip(), "an empty error message"
        assert expected is not True, f"{name}{label}: a harmless {op} of {key!r} refused: {e}"
        if op in ("drop", "junk") and expected is False:
            assert _names(key, message), f"{name}{label}: {op} of {key!r}: {message!r}"
    else:
        assert expected is not False, f"{name}{label}: {op} of {key!r} was accepted"


@fuzz(150)
@given(name=st.sampled_from(sorted(PARSERS)), junk=JUNK)
def test_a_broker_answer_of_the_wrong_shape_is_refused(name: str, junk: Any) -> None:
    parser, shape, _ = PARSERS[name]
    if shape == "bars" and junk is None:
        return  # Alpaca sends "bars": null when no symbol has a bar: an empty frame
    if shape == "bars" and isinstance(junk, dict) and all(v == [] for v in junk.values()):
        return  # symbols without bars
    if shape == "list" and junk == []:
        return
    with pytest.raises(InvalidInputError) as info:
        parser(junk)
    assert str(info.value).strip()


@fuzz(150)
@given(
    status=st.integers(min_value=400, max_value=599),
    body=st.one_of(
        st.text(max_size=400),
        st.builds(json.dumps, NESTED_JUNK),
        st.builds(
            lambda c, m: json.dumps({"code": c, "message": m}),
            st.one_of(st.integers(), st.text(max_size=5), st.none(), st.booleans()),
            st.one_of(st.text(max_size=60), st.integers(), st.none()),
        ),
    ),
    secret=st.text(alphabet="abcdefXYZ0123456789-", min_size=4, max_size=24),
    where=st.integers(min_value=0, max_value=400),
)
# Found by this property: a secret of digits echoed inside the numeric code ("code 10000").
@example(status=400, body='{"code":1,"message":""}', secret="0000", where=9)
def test_any_error_answer_maps_to_a_project_exception_without_the_secret(
    status: int, body: str, secret: str, where: int
) -> None:
    body = body[:where] + secret + body[where:]
    error = error_response_to_exception("POST /v2/orders", status, body, secrets=[secret])
    assert isinstance(error, RegimeTraderError)
    assert str(error).startswith("POST /v2/orders failed: HTTP ")
    assert secret not in str(error)


# -------------------------------------------------------------- known bugs: broker JSON


@fuzz(20)
@given(
    field=st.sampled_from(["qty", "notional", "filled_qty", "filled_avg_price"]),
    value=st.sampled_from(["-1", "-0.5", "-100000"]),
)
def test_an_order_with_a_negative_quantity_or_price_is_refused(field: str, value: str) -> None:
    raw = recorded("order_filled")
    raw[field] = value
    with pytest.raises(InvalidInputError, match=field):
        parsing.order_to_broker_order(raw)


# ============================================================================ bars

CALENDAR_START = date(2024, 1, 1)  # a Monday
WEEKDAYS = [d.date() for d in pd.bdate_range(CALENDAR_START, periods=80)]
SESSIONS = [
    SessionDay(
        d, datetime.combine(d, time(9, 30), NEW_YORK), datetime.combine(d, time(16), NEW_YORK)
    )
    for d in WEEKDAYS
]
SYMBOL_POOL = ("SPY", "TLT", "GLD", "IEF", "BRK.B")


@st.composite
def valid_bars(draw: st.DrawFn) -> tuple[pd.DataFrame, datetime, int]:
    """Closes of sessions ``first..k`` (k's partial bar optional), as_of, completed rows."""
    symbols = draw(st.lists(st.sampled_from(SYMBOL_POOL), min_size=1, max_size=4, unique=True))
    first = draw(st.integers(0, 20))
    k = draw(st.integers(first + 1, len(WEEKDAYS) - 2))
    during = draw(st.booleans())  # as_of inside session k (its bar partial) or after its close
    as_of = SESSIONS[k].open + timedelta(minutes=31) if during else SESSIONS[k].close
    with_partial = during and draw(st.booleans())
    last = k if (not during or with_partial) else k - 1
    n = last - first + 1
    steps = draw(
        st.lists(
            st.lists(st.floats(-0.25, 0.25), min_size=len(symbols), max_size=len(symbols)),
            min_size=n,
            max_size=n,
        )
    )
    starts = draw(st.lists(st.floats(1.0, 5000.0), min_size=len(symbols), max_size=len(symbols)))
    values = np.asarray(starts) * np.exp(np.cumsum(np.asarray(steps), axis=0))
    frame = pd.DataFrame(
        values, index=pd.DatetimeIndex(WEEKDAYS[first : last + 1]), columns=symbols
    )
    frame.index.name = "date"
    completed = n - (1 if during and with_partial else 0)
    return frame, as_of, completed


@fuzz(150)
@given(case=valid_bars())
def test_valid_bars_pass_and_only_the_partial_bar_is_dropped(
    case: tuple[pd.DataFrame, datetime, int],
) -> None:
    frame, as_of, completed = case
    out = check_bars(frame, SESSIONS, as_of=as_of).closes
    assert len(out) == completed
    np.testing.assert_array_equal(out.to_numpy(), frame.to_numpy()[:completed])


BAR_MUTATIONS = (
    *("nan", "zero", "negative", "inf", "jump"),
    *("duplicate", "swap", "gap", "weekend", "future"),
)


@fuzz(300)
@given(case=valid_bars(), data=st.data(), mutation=st.sampled_from(BAR_MUTATIONS))
def test_bad_bars_are_refused_naming_the_symbol_and_date(
    case: tuple[pd.DataFrame, datetime, int], data: st.DataObject, mutation: str
) -> None:
    frame, as_of, completed = case
    values = frame.to_numpy().copy()
    days = list(frame.index)
    symbols = [str(c) for c in frame.columns]
    row = data.draw(st.integers(0, completed - 1), label="row")
    col = data.draw(st.integers(0, len(symbols) - 1), label="col")
    symbol: str | None = symbols[col]
    named = days[row]
    if mutation in ("nan", "zero", "negative", "inf"):
        values[row, col] = {"nan": np.nan, "zero": 0.0, "negative": -values[row, col]}.get(
            mutation, np.inf
        )
    elif mutation == "jump":
        assume(completed >= 2)
        row = max(row, 1)
        named = days[row]
        # Far enough from 1 that no random-walk step (at most e**0.25) brings it under 50%.
        factor = data.draw(st.sampled_from([3.0, 100.0, 1 / 3, 0.01]), label="factor")
        values[row:, col] *= factor  # a level shift: only the move into `row` is a jump
    elif mutation == "duplicate":
        values = np.insert(values, row + 1, values[row], axis=0)
        days.insert(row + 1, days[row])
        symbol = None
    elif mutation == "swap":
        assume(len(days) >= 2)
        row = min(row, len(days) - 2)
        days[row], days[row + 1] = days[row + 1], days[row]
        named, symbol = days[row], None  # the earlier date now comes second
    elif mutation == "gap":
        assume(completed >= 2)
        row = max(row, 1)
        named = days[row]
        values = np.delete(values, row, axis=0)
        del days[row]
        symbol = None
    elif mutation == "weekend":
        saturday = days[row] + pd.offsets.Week(weekday=5)
        position = int(np.searchsorted(pd.DatetimeIndex(days).asi8, saturday.value))
        values = np.insert(values, position, values[min(row, len(values) - 1)], axis=0)
        days.insert(position, saturday)
        named, symbol = saturday, None
    else:  # a bar dated in a session that has not opened yet
        later = pd.Timestamp(next(s.date for s in SESSIONS if s.open > as_of))
        values = np.vstack([values, values[-1]])
        days.append(later)
        named, symbol = later, None
    bad = pd.DataFrame(values, index=pd.DatetimeIndex(days, name="date"), columns=symbols)

    with pytest.raises(InvalidInputError) as info:
        check_bars(bad, SESSIONS, as_of=as_of)
    message = str(info.value)
    if symbol is not None:
        assert symbol in message, message
    whole_column = mutation == "nan" and np.isnan(values[:completed, col]).all()
    if not whole_column:
        assert str(named.date()) in message, message


@fuzz(200)
@given(
    symbols=st.lists(st.sampled_from(SYMBOL_POOL), max_size=3, unique=True),
    rows=st.lists(
        st.tuples(
            st.integers(0, 40),
            st.lists(
                st.one_of(
                    st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([0.0, -1.0, 100.0, 101.0, 1e-300, 1e300]),
                ),
                min_size=3,
                max_size=3,
            ),
        ),
        max_size=12,
    ),
    as_of_day=st.integers(0, 45),
    minutes=st.sampled_from([-60, 31, 400, 1000]),
)
def test_chaotic_bars_end_in_a_market_data_error_or_a_clean_frame(
    symbols: list[str], rows: list[tuple[int, list[float]]], as_of_day: int, minutes: int
) -> None:
    start = pd.Timestamp(CALENDAR_START)
    index = pd.DatetimeIndex([start + pd.Timedelta(days=d) for d, _ in rows], name="date")
    values = np.array([v[: len(symbols)] for _, v in rows], dtype=float).reshape(
        len(rows), len(symbols)
    )
    frame = pd.DataFrame(values, index=index, columns=symbols)
    as_of = SESSIONS[as_of_day].open + timedelta(minutes=minutes)
    try:
        out = check_bars(frame, SESSIONS, as_of=as_of).closes
    except InvalidInputError as e:
        message = str(e)
        assert message.strip()
        assert any(s in message for s in symbols) or "no symbols" in message, message
        return
    closes = out.to_numpy()
    assert len(out) and np.isfinite(closes).all() and (closes > 0).all()
    assert out.index.is_monotonic_increasing and out.index.is_unique
    assert (np.abs(closes[1:] / closes[:-1] - 1) <= 0.5).all()
    assert all(SESSIONS[WEEKDAYS.index(t.date())].close <= as_of for t in out.index)


# -------------------------------------------------------------- known bugs: bars


def test_a_bar_without_a_date_is_refused() -> None:
    index = pd.DatetimeIndex([pd.NaT, *WEEKDAYS[1:5]], name="date")
    frame = pd.DataFrame({"SPY": [100.0, 101, 102, 103, 104]}, index=index)
    with pytest.raises(InvalidInputError, match="SPY"):
        check_bars(frame, SESSIONS, as_of=SESSIONS[5].open)


# ============================================================================ configuration

SETTING_NAMES = sorted(
    ("REDIS_URL" if name == "redis_url" else f"RT_{name.upper()}")
    for name in Settings.model_fields
    if name not in {"redis_password", *DERIVED_FIELDS} and not name.startswith("alpaca_api")
)
ENV_VALUES = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "0",
            "-1",
            "1",
            "5",
            "65536",
            "99999999999999999999",
            "1e400",
            "nan",
            "inf",
            "-inf",
            "true",
            "false",
            "yes",
            "maybe",
            "abc",
            "10:00",
            "25:00",
            "9:61",
            "json",
            "console",
            "DEBUG",
            "iex",
            "sip",
            "redis://localhost:6379/0",
            "rediss://:pw@host:6380/1",
            "http://localhost",
            "/tmp",
            "~/x",
            "json://u:p@host/hook",
        ]
    ),
    # Environment values cannot hold NUL or lone surrogates (the OS refuses them).
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12),
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith(("RT_", "ALPACA_", "REDIS_")):
            monkeypatch.delenv(name)
    return monkeypatch


def _field(variable: str) -> str:
    return variable.removeprefix("RT_").lower()


@fuzz(250)
@given(variable=st.sampled_from(SETTING_NAMES), value=ENV_VALUES)
def test_a_random_setting_is_accepted_or_refused_by_name(
    clean_env: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    with clean_env.context() as env:
        env.setenv(variable, value)
        try:
            settings = load_settings()
        except ConfigError as e:
            assert _field(variable) in str(e).lower(), str(e)
            return
    # Accepted: a scalar setting holds exactly what its declared type makes of the text (the
    # variable was read, not ignored for its default).
    annotation = Settings.model_fields[_field(variable)].annotation
    if annotation is not None and (
        annotation in (int, float, bool, time) or get_origin(annotation) is Literal
    ):
        expected = TypeAdapter(annotation).validate_python(value)
        assert getattr(settings, _field(variable)) == expected, (variable, value)


@fuzz(60)
@given(
    variables=st.lists(
        st.sampled_from([v for v in SETTING_NAMES if v != "RT_SYMBOLS"]), min_size=2, max_size=5
    ),
    values=st.lists(ENV_VALUES, min_size=5, max_size=5),
    secret=st.text(alphabet="ABCDEFGHJKmnpqrstuvwxyz23456789", min_size=12, max_size=20),
)
def test_random_settings_never_print_the_secrets(
    clean_env: pytest.MonkeyPatch, variables: list[str], values: list[str], secret: str
) -> None:
    assume(not any(secret in v for v in values))  # only the secrets may carry it
    with clean_env.context() as env:
        env.setenv("ALPACA_API_KEY_ID", "K" + secret)
        env.setenv("ALPACA_API_SECRET_KEY", "S" + secret)
        env.setenv("REDIS_PASSWORD", "P" + secret)
        for variable, value in zip(variables, values, strict=False):
            env.setenv(variable, value.replace("pw", "P" + secret))
        try:
            load_settings()
        except ConfigError as e:
            assert secret not in str(e)


def _toml_string(text: str) -> str:
    """A TOML basic string: JSON's escapes, minus its surrogate pairs, plus DEL escaped."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007F")


def _toml_value(value: Any) -> str:
    """A TOML inline value (enough for the generated tables: no tomli-w needed)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, time | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
        )
    raise TypeError(value)


def _toml(tables: list[dict[str, Any]]) -> str:
    lines = []
    for table in tables:
        lines.append("[[portfolio]]")
        lines += [f"{_toml_string(k)} = {_toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


TICKERS = st.from_regex(r"\A[A-Z][A-Z0-9.]{0,4}\Z")


# Each portfolio needs its own account (config refuses two on one): unique names and key vars.
_ONE_ACCOUNT_EACH = (lambda t: t["name"], lambda t: t.get("key_id_env", "ALPACA_API_KEY_ID"))


@st.composite
def portfolio_tables(draw: st.DrawFn) -> dict[str, Any]:
    """A valid [[portfolio]] table: any subset of the fields, each in its domain."""
    table: dict[str, Any] = {
        "name": draw(st.from_regex(r"\A[a-z0-9][a-z0-9_-]{0,10}\Z")),
        "symbols": draw(st.lists(TICKERS, min_size=1, max_size=4, unique=True)),
    }
    optional: dict[str, st.SearchStrategy[Any]] = {
        "strategy": st.sampled_from(["regime_erc", "erc_static", "equal_weight", "buy_hold"]),
        "schedule_time": st.times(),
        "no_trade_band": st.floats(0.0, 0.99),
        "cash_buffer": st.floats(0.0, 0.99),
        "min_order_notional": st.floats(1.0, 1e6),
        "history_sessions": st.integers(300, 5000),
        "fill_timeout_secs": st.floats(0.01, 1e5),
        "key_id_env": st.sampled_from(
            ["ALPACA_API_KEY_ID", "OTHER_KEY", "THIRD_KEY", "FOURTH_KEY"]
        ),
    }
    for key in draw(st.lists(st.sampled_from(sorted(optional)), unique=True)):
        table[key] = draw(optional[key])
    if table.get("strategy", "regime_erc") == "regime_erc" and draw(st.booleans()):
        table["strategy_params"] = {"regime_blend": draw(st.floats(0.0, 1.0))}
    return table


TOML_JUNK = st.one_of(
    st.sampled_from(
        ["", "UPPER", "a b", "x" * 40, -1, 0, 1.0, 1e300, "nan", True, [], [1, 2], {"a": 1}]
    ),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(),
    st.text(st.characters(codec="utf-8"), max_size=6),
    st.lists(st.text(st.characters(codec="utf-8"), max_size=4), max_size=3),
    st.dates(),
    st.times(),
)
PORTFOLIO_FIELDS = (
    "name",
    "symbols",
    "strategy",
    "strategy_params",
    "schedule_time",
    "no_trade_band",
    "cash_buffer",
    "min_order_notional",
    "history_sessions",
    "fill_timeout_secs",
    "key_id_env",
    "secret_key_env",
    "unknown_field",
)


@fuzz(120)
@given(tables=st.lists(portfolio_tables(), min_size=1, max_size=3, unique_by=_ONE_ACCOUNT_EACH))
def test_valid_portfolio_files_load(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, tables: list[dict[str, Any]]
) -> None:
    path = tmp_path / "portfolios.toml"
    path.write_text(_toml(tables), encoding="utf-8")
    with clean_env.context() as env:
        env.setenv("RT_CONFIG_FILE", str(path))
        loaded = load_settings().portfolios
    assert [p.name for p in loaded] == [t["name"] for t in tables]
    assert [list(p.symbols) for p in loaded] == [t["symbols"] for t in tables]


@fuzz(250)
@given(
    tables=st.lists(portfolio_tables(), min_size=1, max_size=3, unique_by=_ONE_ACCOUNT_EACH),
    which=st.integers(0, 2),
    field=st.sampled_from(PORTFOLIO_FIELDS),
    junk=TOML_JUNK,
)
def test_a_bad_portfolio_field_is_refused_naming_the_table_and_field(
    clean_env: pytest.MonkeyPatch,
    tmp_path: Path,
    tables: list[dict[str, Any]],
    which: int,
    field: str,
    junk: Any,
) -> None:
    which %= len(tables)
    tables[which][field] = junk
    assume(field != "name" or junk not in [t["name"] for i, t in enumerate(tables) if i != which])
    path = tmp_path / "portfolios.toml"
    path.write_text(_toml(tables), encoding="utf-8")
    with clean_env.context() as env:
        env.setenv("RT_CONFIG_FILE", str(path))
        try:
            load_settings()
        except ConfigError as e:
            message = str(e)
            assert str(path) in message and f"portfolio #{which + 1}" in message, message
            assert field in message, message
            return
    assert field != "unknown_field", "an unknown field was accepted"


@fuzz(150)
@given(
    text=st.one_of(
        st.text(st.characters(codec="utf-8"), max_size=80),
        st.lists(
            st.sampled_from(
                [
                    "[[portfolio]]",
                    "[portfolio]",
                    "portfolio = 3",
                    'name = "a"',
                    'name = "a"\nname = "b"',
                    'symbols = ["SPY"]',
                    "symbols = 5",
                    "[portfolio.strategy_params]",
                    "regime_blend = nan",
                    "x = ",
                    "[other]",
                    "[[portfolio.x]]",
                    '"quoted key" = 1',
                    "= 1",
                ]
            ),
            max_size=6,
        ).map("\n".join),
    )
)
def test_arbitrary_portfolio_file_text_ends_in_a_config_error_or_settings(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, text: str
) -> None:
    # `portfolio = [1, 2]`-style arrays of non-tables have their own test below; this text never
    # writes an inline array for `portfolio`.
    path = tmp_path / "portfolios.toml"
    path.write_text(text, encoding="utf-8")
    with clean_env.context() as env:
        env.setenv("RT_CONFIG_FILE", str(path))
        try:
            load_settings()
        except ConfigError as e:
            assert str(path) in str(e)


# -------------------------------------------------------------- known bugs: configuration


@pytest.mark.parametrize(
    ("variable", "file_name", "content"),
    [
        ("REDIS_PASSWORD_FILE", "password", b"\xff\xfe\x00pw"),
        ("RT_CONFIG_FILE", "portfolios.toml", b'[[portfolio]]\nname = "caf\xe9"\n'),
    ],
    ids=["secret file", "portfolio file"],
)
def test_a_file_that_is_not_utf8_is_a_config_error_naming_its_variable(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, variable: str, file_name: str, content: bytes
) -> None:
    path = tmp_path / file_name
    path.write_bytes(content)
    clean_env.setenv(variable, str(path))
    with pytest.raises(ConfigError, match=variable):
        load_settings()


@pytest.mark.parametrize("text", ["portfolio = [1, 2]\n", 'portfolio = ["core"]\n'])
def test_a_portfolio_array_of_non_tables_is_a_config_error(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, text: str
) -> None:
    path = tmp_path / "portfolios.toml"
    path.write_text(text, encoding="utf-8")
    clean_env.setenv("RT_CONFIG_FILE", str(path))
    with pytest.raises(ConfigError, match="portfolio #1"):
        load_settings()


@pytest.mark.parametrize("value", ["inf", "1e400", "nan"])
@pytest.mark.parametrize(
    "variable", ["RT_WAKE_INTERVAL_SECS", "RT_LOCK_TTL_SECS", "RT_MISFIRE_GRACE_SECS"]
)
def test_an_infinite_duration_is_refused_naming_the_variable(
    clean_env: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    clean_env.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable):
        load_settings()


@pytest.mark.parametrize(
    "regime", ["n_states = 0", "n_states = 7", "n_init = 0", "n_iter = 0", "tol = -1.0"]
)
def test_an_out_of_range_regime_parameter_stops_start_up(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, regime: str
) -> None:
    path = tmp_path / "portfolios.toml"
    path.write_text(
        f'[[portfolio]]\nname = "core"\n[portfolio.strategy_params.regime]\n{regime}\n',
        encoding="utf-8",
    )
    clean_env.setenv("RT_CONFIG_FILE", str(path))
    with pytest.raises(ConfigError, match=regime.split()[0]):
        load_settings()


# ============================================================================ price files


@st.composite
def price_tables(draw: st.DrawFn) -> pd.DataFrame:
    symbols = draw(st.lists(TICKERS, min_size=1, max_size=4, unique=True))
    n = draw(st.integers(1, 15))
    first = draw(st.dates(date(1990, 1, 1), date(2030, 1, 1)))
    gaps = draw(st.lists(st.integers(1, 5), min_size=n, max_size=n))
    days = [first + timedelta(days=int(d)) for d in itertools.accumulate(gaps)]
    values = draw(
        st.lists(
            st.lists(st.floats(1e-6, 1e9), min_size=len(symbols), max_size=len(symbols)),
            min_size=n,
            max_size=n,
        )
    )
    return pd.DataFrame(
        values, index=pd.DatetimeIndex(days, name="date"), columns=symbols, dtype=float
    )


def _wide_csv(frame: pd.DataFrame) -> list[list[str]]:
    rows = [["date", *frame.columns]]
    rows += [
        [f"{t:%Y-%m-%d}", *(repr(float(v)) for v in r)]
        for t, r in zip(frame.index, frame.to_numpy(), strict=True)
    ]
    return rows


def _long_csv(frame: pd.DataFrame) -> list[list[str]]:
    rows = [["date", "symbol", "close"]]
    for t, r in zip(frame.index, frame.to_numpy(), strict=True):
        rows += [
            [f"{t:%Y-%m-%d}", s, repr(float(v))] for s, v in zip(frame.columns, r, strict=True)
        ]
    return rows


def _write_csv(path: Path, rows: list[list[str]]) -> Path:
    path.write_text("\n".join(",".join(r) for r in rows) + "\n", encoding="utf-8")
    return path


@fuzz(100)
@given(frame=price_tables(), layout=st.sampled_from(["wide", "long"]))
def test_valid_price_files_load_exactly(tmp_path: Path, frame: pd.DataFrame, layout: str) -> None:
    rows = _wide_csv(frame) if layout == "wide" else _long_csv(frame)
    loaded = load_prices(_write_csv(tmp_path / "prices.csv", rows))
    expected = frame if layout == "wide" else frame[sorted(frame.columns)]
    assert list(loaded.columns) == list(expected.columns)
    assert loaded.index.name == "date"
    assert list(loaded.index) == list(expected.index)
    np.testing.assert_array_equal(loaded.to_numpy(dtype=float), expected.to_numpy())


BAD_PRICES = ["", " ", "abc", "nan", "NaN", "inf", "-inf", "0", "-1", "-0.0", "1e400", "$3"]
BAD_DATES = ["", "abc", "2024-13-01", "2024-02-30", "01/02/2024", "20240102", "2024-01-02T10"]


@fuzz(250)
@given(
    frame=price_tables(),
    layout=st.sampled_from(["wide", "long"]),
    data=st.data(),
    mutation=st.sampled_from(["price", "date", "duplicate", "swap", "unknown_column"]),
)
def test_a_bad_price_file_is_refused_naming_the_file_and_line(
    tmp_path: Path, frame: pd.DataFrame, layout: str, data: st.DataObject, mutation: str
) -> None:
    rows = _wide_csv(frame) if layout == "wide" else _long_csv(frame)
    line = data.draw(st.integers(2, len(rows)), label="line")  # spreadsheet line; header is 1
    row = rows[line - 1]
    expected_text: str | None = f"line {line}"
    if mutation == "price":
        col = data.draw(st.integers(1 if layout == "wide" else 2, len(row) - 1), label="col")
        row[col] = data.draw(st.sampled_from(BAD_PRICES), label="price")
    elif mutation == "date":
        row[0] = data.draw(st.sampled_from(BAD_DATES), label="date")
    elif mutation == "duplicate":
        rows.insert(line, list(row))
        expected_text = None if layout == "wide" else f"line {line + 1}"
    elif mutation == "swap":
        assume(len(frame) >= 2)
        stride = 1 if layout == "wide" else len(frame.columns)
        first, second = 1, 1 + stride  # first rows of the first two dates
        rows[first], rows[second] = rows[second], rows[first]
        expected_text = "comes after"
    else:
        rows[0] = [*rows[0], "Unknown Column"]
        for other in rows[1:]:
            other.append("1")
        expected_text = "Unknown Column"
    path = _write_csv(tmp_path / "prices.csv", rows)

    with pytest.raises(PriceFileError) as info:
        load_prices(path)
    message = str(info.value)
    assert str(path) in message, message
    if expected_text is not None:
        assert expected_text in message, message


CSV_TOKENS = ["date", "SPY", "TLT", "close", "price", "2024-01-02", "2024-01-03", "1.5", "-2"]
CSV_TOKENS += ["", "nan", "abc", '"', "x y", "\t"]


@fuzz(200)
@given(
    lines=st.lists(
        st.lists(st.sampled_from(CSV_TOKENS), min_size=1, max_size=4).map(",".join),
        max_size=5,
    ),
    noise=st.text(max_size=20),
)
def test_arbitrary_csv_text_ends_in_a_price_file_error_or_clean_prices(
    tmp_path: Path, lines: list[str], noise: str
) -> None:
    path = tmp_path / "prices.csv"
    path.write_text("\n".join(lines) + "\n" + noise, encoding="utf-8", errors="surrogatepass")
    try:
        prices = load_prices(path)
    except PriceFileError as e:
        assert str(path) in str(e)
        return
    values = prices.to_numpy()
    assert np.isfinite(values).all() and (values > 0).all()
    assert prices.index.is_monotonic_increasing and prices.index.is_unique


# -------------------------------------------------------------- known bugs: price files


@pytest.mark.parametrize("header", ["date,symbol", "date,close"])
def test_a_long_file_missing_a_column_is_refused(tmp_path: Path, header: str) -> None:
    path = tmp_path / "prices.csv"
    path.write_text(f"{header}\n2024-01-02,SPY\n", encoding="utf-8")
    with pytest.raises(PriceFileError, match=r"symbol|close"):
        load_prices(path)


def test_a_repeated_price_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_text("date,SPY,SPY\n2024-01-02,100,1\n", encoding="utf-8")
    with pytest.raises(PriceFileError, match="SPY"):
        load_prices(path)
