"""Alert values and their rendering; no Redis, no network (see tests/integration/service)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from regime_trader.service.alert_channels import AlertPublisher, channel_label, notifier_url_secrets
from regime_trader.service.alerts import Alert
from regime_trader.service.exceptions import InvalidInputError


def _rebalance() -> Alert:
    return Alert(
        portfolio="core",
        session="2024-03-15",
        kind="rebalanced",
        severity="info",
        summary="core 2024-03-15: rebalanced with 2 orders, regime stress",
        details={
            "regime": "stress",
            "regime_probs": {"calm": 0.18, "stress": 0.82},
            "regime_change": {"from": "calm", "to": "stress"},
            # The cycle stores Decimals as strings; numbers and numeric strings both render.
            "target_weights": {"SPY": "0.3000", "TLT": 0.45, "GLD": 0.25},
            "previous_weights": {"SPY": "0.6000", "TLT": "0.4000"},
            "orders": [
                {
                    "symbol": "SPY",
                    "side": "sell",
                    "qty": "61",
                    "client_order_id": "core-20240315-SPY-sell",
                    "status": "filled",
                    "filled_qty": "61",
                    "filled_avg_price": "512.3",
                },
                {
                    "symbol": "GLD",
                    "side": "buy",
                    "qty": "124",
                    "client_order_id": "core-20240315-GLD-buy",
                    "status": "partially_filled",
                    "filled_qty": "100",
                    "filled_avg_price": 201.0,
                },
            ],
            "reason": "",
            "equity": "101234.5",
        },
    )


def test_rebalance_text_shows_regime_change_weights_table_and_fills() -> None:
    lines = _rebalance().to_text().splitlines()

    assert lines[0] == "[rebalanced] core 2024-03-15 (info)"
    assert lines[1] == "core 2024-03-15: rebalanced with 2 orders, regime stress"
    assert "Regime: stress (calm 0.18, stress 0.82)" in lines
    assert "Regime change: calm -> stress" in lines
    rows = {line.split()[0]: line.split()[1:] for line in lines if line.startswith("  ")}
    # target, previous, change; GLD is new (previous 0), sorted by symbol.
    assert rows["GLD"] == ["25.0%", "0.0%", "+25.0%"]
    assert rows["SPY"] == ["30.0%", "60.0%", "-30.0%"]
    assert rows["TLT"] == ["45.0%", "40.0%", "+5.0%"]
    assert "  SELL SPY qty 61, filled 61 @ 512.30 [filled] id=core-20240315-SPY-sell" in lines
    assert (
        "  BUY GLD qty 124, filled 100 @ 201.00 [partially_filled] id=core-20240315-GLD-buy"
        in lines
    )
    assert lines[-1] == "Equity: $101,234.50"
    assert not any(line.startswith("Reason") for line in lines)


def test_no_trade_text_gives_the_reason_and_no_order_section() -> None:
    alert = Alert(
        portfolio="core",
        session="2024-03-18",
        kind="no_trade",
        severity="info",
        summary="core 2024-03-18: no trade (within bands), regime calm",
        details={
            "regime": "calm",
            "regime_probs": [0.93, 0.07],
            "regime_change": None,
            "target_weights": {"SPY": 0.6, "TLT": 0.4},
            "previous_weights": {"SPY": 0.59, "TLT": 0.41},
            "orders": [],
            "reason": "all drifts inside the 2% no-trade band",
            "equity": 99876,
        },
    )

    text = alert.to_text()

    assert text.splitlines()[0] == "[no_trade] core 2024-03-18 (info)"
    assert "Reason: all drifts inside the 2% no-trade band" in text
    assert "Regime: calm (0 0.93, 1 0.07)" in text
    assert "Orders" not in text and "Regime change" not in text
    assert "+1.0%" in text and "-1.0%" in text


def test_rebalance_without_orders_says_so() -> None:
    alert = Alert("core", "2024-03-18", "rebalanced", "warning", "nothing sent", {"orders": []})
    assert "Orders: none" in alert.to_text()


def test_json_round_trip_keeps_every_field() -> None:
    alert = _rebalance()
    data = json.loads(alert.to_json())
    assert data["details"]["orders"][1]["filled_qty"] == "100"
    assert Alert.from_json(alert.to_json()) == alert
    assert Alert.from_json(alert.to_json().encode()) == alert


def test_details_json_cannot_hold_become_strings() -> None:
    from decimal import Decimal

    alert = Alert("core", "2024-03-18", "no_trade", "info", "x", {"equity": Decimal("1.50")})
    assert json.loads(alert.to_json())["details"]["equity"] == "1.50"


def test_created_at_defaults_to_utc_now() -> None:
    assert _rebalance().created_at.endswith("Z")


def test_multiline_summary_is_folded_into_one_title_line() -> None:
    alert = Alert("core", "2024-03-18", "failed", "error", "broker said:\n  HTTP 503\n")
    assert alert.summary == "broker said: HTTP 503"


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("kind", "traded", "Alert.kind must be one of .* got 'traded'"),
        ("severity", "fatal", "Alert.severity must be one of .* got 'fatal'"),
        ("session", "15/03/2024", "ISO dates"),
        ("created_at", "yesterday", "ISO dates"),
    ],
)
def test_out_of_domain_fields_are_rejected(field: str, value: str, match: str) -> None:
    fields: dict[str, Any] = {
        "portfolio": "core",
        "session": "2024-03-15",
        "kind": "failed",
        "severity": "error",
        "summary": "x",
    }
    fields[field] = value
    with pytest.raises(ValueError, match=match):
        Alert(**fields)


@pytest.mark.parametrize("text", ["{not json", "[]", '{"portfolio": "core"}', "null"])
def test_from_json_rejects_what_is_not_an_alert(text: str) -> None:
    with pytest.raises(InvalidInputError, match="not an alert"):
        Alert.from_json(text)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)
detail_keys = st.sampled_from(
    [
        "regime",
        "regime_probs",
        "regime_change",
        "target_weights",
        "previous_weights",
        "orders",
        "reason",
        "equity",
        "other",
    ]
)


@settings(max_examples=100, deadline=None)
@given(details=st.dictionaries(detail_keys, json_values, max_size=9))
def test_text_never_raises_on_any_json_details(details: dict[str, Any]) -> None:
    alert = Alert("core", "2024-03-15", "skipped", "warning", "summary", details)
    text = alert.to_text()
    assert text.splitlines()[:2] == ["[skipped] core 2024-03-15 (warning)", "summary"]
    assert Alert.from_json(alert.to_json()) == alert


@pytest.mark.parametrize(
    ("url", "label"),
    [
        ("json://127.0.0.1:8080/hook?token=abc", "json://127.0.0.1:8080"),
        ("jsons://user:pa55word@hooks.example.com/x/y", "jsons://hooks.example.com"),
        ("mailtos://me:app-password@gmail.com?to=ops@example.com", "mailtos://gmail.com"),
        # In these schemes the "host" is the bot token or webhook id.
        ("tgram://123456789:AAH-botToken/-100123", "tgram://***"),
        ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#ops", "slack://***"),
        ("discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js", "discord://***"),
    ],
)
def test_channel_label_shows_scheme_and_network_host_only(url: str, label: str) -> None:
    assert channel_label(url) == label


def test_notifier_url_secrets_cover_credentials_tokens_and_query_values() -> None:
    parts = notifier_url_secrets("tgram://123456789:AAH-botToken/-100123?key=v4lue")
    assert {"123456789:AAH-botToken", "-100123", "v4lue"} <= set(parts)
    parts = notifier_url_secrets("jsons://user:pa55word@hooks.example.com/x/T0KEN")
    assert {"pa55word", "T0KEN"} <= set(parts) and "hooks.example.com" not in parts


def test_unknown_notifier_url_stops_start_up_without_echoing_it() -> None:
    client: redis.Redis[Any] = redis.Redis(host="127.0.0.1", port=1)  # never contacted
    with pytest.raises(InvalidInputError, match=r"nosuchscheme://\*\*\*") as excinfo:
        AlertPublisher(client, notifier_urls=["nosuchscheme://secret-token-value/x"])
    assert "secret-token-value" not in str(excinfo.value)


@pytest.mark.parametrize("kwargs", [{"stream_maxlen": 0}, {"notify_timeout_secs": 0}])
def test_publisher_settings_are_range_checked(kwargs: dict[str, Any]) -> None:
    client: redis.Redis[Any] = redis.Redis(host="127.0.0.1", port=1)
    with pytest.raises(ValueError, match="need stream_maxlen >= 1"):
        AlertPublisher(client, **kwargs)
