"""Alerts through apprise to real HTTP receivers: delivery, isolated failures, redaction."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import structlog

from regime_trader.service.alert_channels import AlertPublisher
from regime_trader.service.alerts import Alert
from regime_trader.service.logs import configure_logging, redactor
from tests.integration.service.conftest import Webhook

SECRET = "sk-live-9f8e7d6c5b4a"
HOOK_TOKEN = "T0KEN-in-the-webhook-path"


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """JSON log lines with SECRET and HOOK_TOKEN registered as secrets; logging restored after."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    buffer = io.StringIO()
    configure_logging("INFO", "json", secrets=[SECRET, HOOK_TOKEN], stream=buffer)
    yield buffer
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    structlog.reset_defaults()


def _rebalance(summary: str = "core 2024-03-15: rebalanced, regime stress") -> Alert:
    return Alert(
        portfolio="core",
        session="2024-03-15",
        kind="rebalanced",
        severity="info",
        summary=summary,
        details={
            "regime": "stress",
            "regime_probs": {"calm": 0.2, "stress": 0.8},
            "target_weights": {"SPY": 0.3, "TLT": 0.7},
            "previous_weights": {"SPY": 0.6, "TLT": 0.4},
            "orders": [{"symbol": "SPY", "side": "sell", "qty": "10", "status": "filled"}],
            "equity": 100000.0,
        },
    )


def test_json_webhook_receives_summary_as_title_and_text_as_body(
    redis_client: redis.Redis[Any], webhook: Webhook
) -> None:
    alert = _rebalance()
    publisher = AlertPublisher(redis_client, namespace="n1", notifier_urls=[webhook.url("hook")])

    report = publisher.publish(alert)

    assert report.failed == {}
    assert report.delivered == ("stream", "pubsub", f"json://127.0.0.1:{webhook.port}")
    [received] = webhook.wait_for(1)
    assert received.path == "/hook"
    payload = received.json()
    assert payload["title"] == alert.summary
    assert payload["message"] == alert.to_text()
    assert "SPY" in payload["message"] and "-30.0%" in payload["message"]


def test_refused_notifier_is_reported_and_does_not_stop_the_others(
    redis_client: redis.Redis[Any], webhook: Webhook
) -> None:
    urls = ["json://127.0.0.1:1/", webhook.url("first"), webhook.url("second")]
    publisher = AlertPublisher(redis_client, namespace="n2", notifier_urls=urls)

    report = publisher.publish(_rebalance())

    assert list(report.failed) == ["json://127.0.0.1:1"]
    assert "failure" in report.failed["json://127.0.0.1:1"]
    ok = f"json://127.0.0.1:{webhook.port}"
    assert report.delivered == ("stream", "pubsub", ok, f"{ok}#3")
    assert sorted(r.path for r in webhook.wait_for(2)) == ["/first", "/second"]
    assert redis_client.xlen("n2:alerts") == 1


def test_silent_notifier_times_out_within_the_deadline_and_the_others_deliver(
    redis_client: redis.Redis[Any], webhook: Webhook, silent_port: int
) -> None:
    urls = [f"json://127.0.0.1:{silent_port}/a", f"json://127.0.0.1:{silent_port}/b", webhook.url()]
    publisher = AlertPublisher(
        redis_client, namespace="n3", notifier_urls=urls, notify_timeout_secs=1.0
    )

    started = time.monotonic()
    report = publisher.publish(_rebalance())
    elapsed = time.monotonic() - started

    # Both silent channels wait out the 1 s deadline side by side, not one after the other.
    assert 0.9 < elapsed < 1.8
    silent = f"json://127.0.0.1:{silent_port}"
    assert list(report.failed) == [silent, f"{silent}#2"]
    assert f"json://127.0.0.1:{webhook.port}" in report.delivered
    assert len(webhook.wait_for(1)) == 1


def test_secret_is_redacted_from_stream_pubsub_webhook_report_and_logs(
    redis_client: redis.Redis[Any], webhook: Webhook, log_lines: io.StringIO
) -> None:
    pubsub = redis_client.pubsub()
    pubsub.subscribe("n4:alerts:live")
    pubsub.get_message(timeout=2)
    alert = Alert(
        portfolio="core",
        session="2024-03-15",
        kind="failed",
        severity="error",
        summary=f"core 2024-03-15: broker refused key {SECRET}",
        details={"reason": f"401 for key={SECRET}", "nested": [{"header": f"Bearer {SECRET}"}]},
    )
    urls = [webhook.url(), f"json://127.0.0.1:1/{HOOK_TOKEN}"]
    publisher = AlertPublisher(
        redis_client, namespace="n4", notifier_urls=urls, redact=redactor([SECRET])
    )

    report = publisher.publish(alert)

    [(_, fields)] = redis_client.xrange("n4:alerts")
    stream_text = fields[b"json"].decode()
    live = pubsub.get_message(timeout=2)
    pubsub.close()
    assert live is not None
    [received] = webhook.wait_for(1)
    logged = log_lines.getvalue()
    for where, text in {
        "stream": stream_text,
        "pubsub": live["data"].decode(),
        "webhook": received.body.decode(),
        "report": json.dumps([report.delivered, report.failed]),
        "logs": logged,
    }.items():
        assert SECRET not in text, where
        assert HOOK_TOKEN not in text, where
    assert json.loads(stream_text)["details"]["nested"][0]["header"] == "Bearer ***"
    assert "***" in received.json()["title"]
    # The broken channel is still named (by host) in the report and the log.
    assert list(report.failed) == ["json://127.0.0.1:1"]
    failures = [json.loads(line) for line in logged.splitlines() if "alert_channel_failed" in line]
    assert [f["channel"] for f in failures] == ["json://127.0.0.1:1"]
    assert failures[0]["portfolio"] == "core" and failures[0]["level"] == "warning"
