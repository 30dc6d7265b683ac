"""The operator commands against a real Redis and the embedded emulator, in-process.

Each test is a scenario an operator meets; each asserts what the command printed and its exit
code (:mod:`regime_trader.service.ops_cli` documents them).
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import pytest
import redis

from regime_trader.service.cli import main
from regime_trader.service.ops_common_cli import ExitCode
from tests.integration.service.offline_service import offline_env

__all__ = ["offline_env"]

LOCK = "rt:default:lock"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_rebalance_waits_for_a_dead_runners_lock_to_expire_then_finishes_the_cycle(
    offline_env: Path,
    redis_client: redis.Redis,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RT_LOCK_TTL_SECS", "5")
    code, out, _ = _run(capsys, "rebalance")
    assert code == ExitCode.OK and out.startswith("default 2024-01-02: rebalanced"), out
    # A runner crashed holding the next session's lock: it expires in 2 s.
    redis_client.set(LOCK, "host/999/dead", px=2000)
    code, out, err = _run(capsys, "rebalance")
    assert code == ExitCode.OK, (out, err)
    assert "waiting up to 20 s" in err  # the lock TTL (5 s) plus the margin
    assert out.startswith("default 2024-01-03: "), out
    assert "2024-01-02" not in out  # the session it ran, never the earlier one's alert
    assert redis_client.get(LOCK) is None


def test_rebalance_exits_75_when_the_lock_is_still_held_after_the_wait(
    offline_env: Path, redis_client: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(capsys, "rebalance")[0] == ExitCode.OK
    redis_client.set(LOCK, "host/1/alive", px=60_000)
    code, out, _ = _run(capsys, "rebalance", "--wait-secs", "0.5")
    assert code == ExitCode.LOCKED and int(code) == 75
    assert out.startswith("default 2024-01-03: locked — another process still held"), out
    assert "rebalanced" not in out  # not the previous session's alert
    code, out, _ = _run(capsys, "rebalance", "--wait-secs", "0.5", "--json")
    report = json.loads(out)
    assert (report["outcome"], report["exit_code"], report["alert"]) == ("locked", 75, None)


def test_rebalance_returns_as_soon_as_a_live_runner_releases_the_lock(
    offline_env: Path, redis_client: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    redis_client.set(LOCK, "host/2/alive", px=60_000)
    release = threading.Timer(1.0, lambda: redis_client.delete(LOCK))
    release.start()
    try:
        code, out, _ = _run(capsys, "rebalance", "--wait-secs", "50")
    finally:
        release.cancel()
    assert code == ExitCode.OK and "2024-01-02: rebalanced" in out


def test_rebalance_of_a_halted_portfolio_exits_3_with_its_own_sessions_alert(
    offline_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(capsys, "rebalance")[0] == ExitCode.OK
    assert _run(capsys, "halt", "--reason", "earnings")[0] == ExitCode.OK
    code, out, _ = _run(capsys, "rebalance")
    assert code == ExitCode.HALTED
    assert out.startswith("default 2024-01-03: halted: earnings"), out


def test_status_exits_1_when_redis_is_unreachable(
    offline_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:9/0")  # discard port: refused
    code, out, err = _run(capsys, "status")
    assert code == ExitCode.FAILED
    assert json.loads(out)["ready"] is False
    assert "not ready (redis unreachable)" in err


def test_status_is_ready_and_names_the_next_run_with_its_timezone(
    offline_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(capsys, "rebalance")[0] == ExitCode.OK
    code, out, _ = _run(capsys, "status")
    assert code == ExitCode.OK
    doc = json.loads(out)
    assert doc["ready"] is True
    nxt = doc["portfolios"]["default"]["next_run"]
    # The 2024-01-02 cycle is done: the next is the following session at 10:00 New York.
    assert nxt["at"] == "2024-01-03T10:00-05:00" and nxt["timezone"] == "America/New_York"
    assert nxt["text"].startswith("2024-01-03 10:00 EST (America/New_York, simulated clock")


def test_positions_history_and_pnl_after_three_sessions(
    offline_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(3):
        assert _run(capsys, "rebalance")[0] == ExitCode.OK
    code, out, _ = _run(capsys, "positions", "--json")
    assert code == ExitCode.OK
    doc = json.loads(out)
    held = {p["symbol"]: p for p in doc["positions"]}
    assert set(held) == {"SPY", "TLT", "GLD"}
    values = sum(float(p["market_value"]) for p in held.values())
    # Market values at the latest closes plus cash make the broker's equity (its own marks).
    assert values + float(doc["cash"]) == pytest.approx(float(doc["equity"]), rel=1e-6)
    assert sum(p["weight"] for p in held.values()) + doc["cash_weight"] == pytest.approx(1.0)
    assert all(len(p["qty"].split(".")[-1]) > 4 for p in held.values())  # full precision
    code, text, _ = _run(capsys, "positions")
    assert re.search(r"^  SPY +\d+\.\d{4} +\$", text, re.M) and "\n  cash " in text

    code, out, _ = _run(capsys, "history", "--json", "--limit", "2")
    cycles = json.loads(out)["cycles"]
    assert [c["session"] for c in cycles] == ["2024-01-04", "2024-01-03"]
    code, text, _ = _run(capsys, "history")
    assert text.index("2024-01-04") < text.index("2024-01-03") < text.index("2024-01-02")
    assert re.search(r"BUY GLD \d+\.\d{1,4}, filled \d+\.\d{1,4} @ \$\d+\.\d\d \[filled\]", text)

    code, out, _ = _run(capsys, "pnl", "--json")
    rows = json.loads(out)["rows"]
    assert [r["period"] for r in rows] == ["2024-01-02", "2024-01-03", "2024-01-04"]
    first, last = float(rows[0]["equity"]), float(rows[-1]["equity"])
    assert rows[-1]["total_return"] == pytest.approx(last / first - 1)
    assert float(rows[1]["pnl"]) == pytest.approx(float(rows[1]["equity"]) - first)
    for r in rows[1:]:  # the shadow benchmarks are valued at every session after the start
        assert r["benchmarks"]["erc_static"]["total_return"] is not None
    code, text, _ = _run(capsys, "pnl", "--period", "month")
    assert "2024-01" in text and "static ERC since start" in text


def test_config_show_never_prints_a_secret(
    offline_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = {
        "REDIS_PASSWORD": "redis-password-1234",
        "RT_ALERT_URLS": "tgram://123456789:AAbbCCddEEffGGhhIIjj/987654",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    for argv in (("config", "show"), ("config", "show", "--json")):
        code, out, err = _run(capsys, *argv)
        assert code == ExitCode.OK
        for value in (*secrets.values(), "AAbbCCddEEffGGhhIIjj"):
            assert value not in out + err
        assert "***" in out
    doc = json.loads(_run(capsys, "config", "show", "--json")[1])
    assert doc["environment"]["REDIS_PASSWORD"] == "***"
    assert "ALPACA_API_KEY_ID" in doc["unset"]  # no keys: the embedded emulator
    assert doc["portfolios"][0]["symbols"] == ["SPY", "TLT", "GLD"]


def test_config_check_exits_0_for_a_valid_and_2_for_an_invalid_portfolio_file(
    offline_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    good = offline_env.parent / "good.toml"
    good.write_text('[[portfolio]]\nname = "core"\nsymbols = ["SPY", "TLT"]\n', encoding="utf-8")
    monkeypatch.setenv("RT_CONFIG_FILE", str(good))
    code, out, _ = _run(capsys, "config", "check")
    assert code == ExitCode.OK and "configuration OK: 1 portfolio(s)" in out
    assert "core: SPY, TLT at 10:00 America/New_York" in out
    bad = offline_env.parent / "bad.toml"
    bad.write_text('[[portfolio]]\nname = "core"\nno_trade_band = 2\n', encoding="utf-8")
    monkeypatch.setenv("RT_CONFIG_FILE", str(bad))
    code, _, err = _run(capsys, "config", "check")
    assert code == ExitCode.CONFIG
    assert "no_trade_band" in err and "(got 2)" in err


def test_config_check_with_the_broker_refuses_an_unknown_symbol(
    offline_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RT_SYMBOLS", "SPY,XXXX,GLD")
    assert _run(capsys, "config", "check")[0] == ExitCode.OK  # the file alone is valid
    code, _, err = _run(capsys, "config", "check", "--broker")
    assert code == ExitCode.CONFIG and "'XXXX' is not known to the broker" in err


def test_version_names_the_installed_distribution(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as ended:
        main(["--version"])
    assert ended.value.code == 0
    assert capsys.readouterr().out.strip() == f"regime-trader {version('regime-trader')}"
