"""Alerts against a real Redis: the capped stream, the live channel, reading and following."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from regime_trader.service.alert_channels import AlertPublisher, follow_alerts, read_alerts
from regime_trader.service.alerts import Alert
from tests.integration.service.conftest import Webhook, wait_until


def _alert(i: int = 0, portfolio: str = "core", **kw: Any) -> Alert:
    return Alert(
        portfolio=portfolio,
        session="2024-03-15",
        kind=kw.pop("kind", "no_trade"),
        severity="info",
        summary=f"{portfolio} alert {i}",
        details=kw.pop("details", {"reason": "within bands", "i": i}),
        **kw,
    )


def test_published_alert_lands_in_the_stream_and_reads_back_newest_last(
    redis_client: redis.Redis[Any],
) -> None:
    publisher = AlertPublisher(redis_client, namespace="t1")
    reports = [publisher.publish(_alert(i, "core" if i % 2 else "bonds")) for i in range(5)]

    assert all(r.failed == {} and r.delivered == ("stream", "pubsub") for r in reports)
    entries = redis_client.xrange("t1:alerts")
    assert [e[0].decode() for e in entries] == [r.stream_id for r in reports]
    first = json.loads(entries[0][1][b"json"])
    assert first["summary"] == "bonds alert 0" and first["details"]["i"] == 0

    latest = read_alerts(redis_client, namespace="t1", count=3)
    assert [a.summary for a in latest] == ["bonds alert 2", "core alert 3", "bonds alert 4"]
    core = read_alerts(redis_client, namespace="t1", count=10, portfolio="core")
    assert [a.details["i"] for a in core] == [1, 3]


def test_stream_stays_capped_when_more_than_maxlen_alerts_are_published(
    redis_client: redis.Redis[Any],
) -> None:
    maxlen, published = 20, 300
    publisher = AlertPublisher(redis_client, namespace="t2", stream_maxlen=maxlen)
    for i in range(published):
        publisher.publish(_alert(i))

    # MAXLEN ~ trims whole radix-tree nodes, so at most one node's worth above the cap remains.
    node = int(redis_client.config_get("stream-node-max-entries")["stream-node-max-entries"])
    length = redis_client.xlen("t2:alerts")
    assert maxlen <= length <= maxlen + node
    assert length < published
    assert [a.details["i"] for a in read_alerts(redis_client, namespace="t2", count=3)] == [
        297,
        298,
        299,
    ]


def test_live_subscriber_receives_the_published_alert(redis_client: redis.Redis[Any]) -> None:
    pubsub = redis_client.pubsub()
    pubsub.subscribe("t3:alerts:live")
    assert pubsub.get_message(timeout=2)["type"] == "subscribe"  # type: ignore[index]
    alert = _alert(7, kind="rebalanced", details={"orders": []})

    AlertPublisher(redis_client, namespace="t3").publish(alert)

    message = pubsub.get_message(timeout=2)
    pubsub.close()
    assert message is not None and message["type"] == "message"
    assert Alert.from_json(message["data"]) == alert


def test_follow_yields_only_alerts_added_after_it_started(redis_client: redis.Redis[Any]) -> None:
    publisher = AlertPublisher(redis_client, namespace="t4")
    publisher.publish(_alert(0))  # before following: must not be yielded
    pool = redis_client.connection_pool
    name = f"follower-{uuid.uuid4().hex[:8]}"
    follower_client: redis.Redis[Any] = redis.Redis(
        connection_pool=redis.ConnectionPool(
            connection_class=pool.connection_class,
            **{**pool.connection_kwargs, "client_name": name},
        )
    )
    got: list[Alert] = []
    done = threading.Event()

    def follow() -> None:
        for alert in follow_alerts(follower_client, namespace="t4", block_ms=100, stop=done.is_set):
            got.append(alert)
            if len(got) == 2:
                done.set()

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    # Publish only once the follower is blocked in XREAD from "$", or "$" would skip them.
    assert wait_until(
        lambda: any(
            c.get("name") == name and c.get("cmd") == "xread" for c in redis_client.client_list()
        )
    )
    publisher.publish(_alert(1))
    publisher.publish(_alert(2))
    thread.join(5)
    follower_client.close()

    assert not thread.is_alive()
    assert [a.details["i"] for a in got] == [1, 2]


def test_unreadable_stream_entries_are_skipped(redis_client: redis.Redis[Any]) -> None:
    AlertPublisher(redis_client, namespace="t5").publish(_alert(1))
    redis_client.xadd("t5:alerts", {"json": "{not json"})
    redis_client.xadd("t5:alerts", {"other": "field"})

    assert [a.details["i"] for a in read_alerts(redis_client, namespace="t5")] == [1]


def test_redis_outage_is_reported_while_notifiers_still_deliver(webhook: Webhook) -> None:
    # No retries: redis-py's default backoff would only make the test slow.
    dead: redis.Redis[Any] = redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )
    publisher = AlertPublisher(dead, notifier_urls=[webhook.url()], notify_timeout_secs=3)

    started = time.monotonic()
    report = publisher.publish(_alert(3))

    assert time.monotonic() - started < 5
    assert report.stream_id is None
    assert set(report.failed) == {"stream", "pubsub"}
    assert report.failed["stream"].startswith("ConnectionError")
    assert report.delivered == (f"json://127.0.0.1:{webhook.port}",)
    assert len(webhook.wait_for(1)) == 1


@pytest.mark.parametrize("count", [1, 150])
def test_read_alerts_pages_past_other_portfolios(
    redis_client: redis.Redis[Any], count: int
) -> None:
    publisher = AlertPublisher(redis_client, namespace="t6")
    publisher.publish(_alert(0, "rare"))
    for i in range(250):
        publisher.publish(_alert(i, "busy"))

    rare = read_alerts(redis_client, namespace="t6", count=count, portfolio="rare")

    assert [a.portfolio for a in rare] == ["rare"]


def test_every_alert_of_a_portfolio_names_what_it_trades(redis_client: redis.Redis[Any]) -> None:
    trades = {"core": "profile core3 v1 (regime_erc)"}
    publisher = AlertPublisher(redis_client, namespace="t9", trades=trades)
    publisher.publish(_alert(0, "core"))
    publisher.publish(_alert(1, "core", details={"profile": "as the alert said"}))
    publisher.publish(_alert(2, "bonds"))
    stamped, kept, other = read_alerts(redis_client, namespace="t9", count=3)
    assert stamped.details["profile"] == trades["core"]
    assert "Trades: profile core3 v1 (regime_erc)" in stamped.to_text().splitlines()
    assert kept.details["profile"] == "as the alert said"
    assert "profile" not in other.details  # a portfolio the publisher was not told of
