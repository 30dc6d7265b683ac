"""Fault matrix, case 4: bad configuration and a bad price file at the command line.

Each case runs ``regime-trader run | rebalance | backtest`` as a process with one invalid
setting and expects what an operator needs: a non-zero exit code, a message on stderr that
names the setting (or the file, line and column), and no Python traceback. Nothing may start
trading: the environment points at a Redis and a broker where nothing listens, so a command
that wrongly carried on would fail differently (or hang, and time out).

All the processes start at once (a module fixture) because each spends seconds importing.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests.support.emulator import KEY_ID, SECRET_KEY
from tests.support.processes import ROOT, clean_env, free_port

pytestmark = [pytest.mark.slow, pytest.mark.reliability]


@dataclass(frozen=True)
class Case:
    """One invalid input: the command, what is wrong, and what the message must name."""

    args: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # name -> content, in the case's dir
    names: tuple[str, ...] = ()  # each must appear in stderr (case-insensitive)


CASES: dict[str, Case] = {
    "run-http-port-not-a-number": Case(("run",), {"RT_HTTP_PORT": "abc"}, names=("http_port",)),
    "run-toml-unknown-key": Case(
        ("run",),
        {"RT_CONFIG_FILE": "{dir}/portfolios.toml"},
        {"portfolios.toml": '[[portfolio]]\nname = "core"\nno_trade_bnd = 0.1\n'},
        names=("no_trade_bnd", "portfolios.toml"),
    ),
    "rebalance-toml-negative-band": Case(
        ("rebalance",),
        {"RT_CONFIG_FILE": "{dir}/portfolios.toml"},
        {"portfolios.toml": '[[portfolio]]\nname = "core"\nno_trade_band = -0.5\n'},
        names=("no_trade_band",),
    ),
    "rebalance-redis-url-scheme": Case(
        ("rebalance",), {"REDIS_URL": "http://127.0.0.1:1"}, names=("redis_url",)
    ),
    "backtest-negative-price": Case(
        ("backtest", "--prices", "{dir}/prices.csv", "--quiet", "--out", "{dir}/out"),
        files={"prices.csv": "date,SPY,TLT\n2020-01-02,100,50\n2020-01-03,-101,51\n"},
        names=("prices.csv", "line 3", "SPY"),
    ),
    "run-http-port-in-use": Case(("run",), {"RT_HTTP_PORT": "{busy_port}"}, names=("http_port",)),
    "run-http-host-unresolvable": Case(
        ("run",), {"RT_HTTP_HOST": "no-such-host.invalid"}, names=("http_host",)
    ),
}


@dataclass(frozen=True)
class Result:
    code: int
    stderr: str


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Result]]:
    base = tmp_path_factory.mktemp("config-cases")
    nowhere = f"http://127.0.0.1:{free_port()}"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        fill = {"busy_port": str(busy.getsockname()[1])}
        running: dict[str, subprocess.Popen[str]] = {}
        for name, case in CASES.items():
            here = base / name
            here.mkdir()
            fill["dir"] = str(here)
            for file, content in case.files.items():
                (here / file).write_text(content, encoding="utf-8")
            env = clean_env() | {
                # Somewhere that answers nothing: a command that carried on could not trade.
                "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
                "ALPACA_API_KEY_ID": KEY_ID,
                "ALPACA_API_SECRET_KEY": SECRET_KEY,
                "RT_ALPACA_BASE_URL": nowhere,
                "RT_DATA_DIR": str(here / "data"),
                "RT_LOG_FORMAT": "json",
                "RT_HTTP_PORT": str(free_port()),
            }
            env |= {k: v.format(**fill) for k, v in case.env.items()}
            running[name] = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "regime_trader.service",
                    *(a.format(**fill) for a in case.args),
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                cwd=ROOT,
            )
        out: dict[str, Result] = {}
        for name, process in running.items():
            try:
                _, stderr = process.communicate(timeout=90)
            except subprocess.TimeoutExpired:
                process.kill()
                _, stderr = process.communicate()
                stderr += "\n[still running after 90 s: killed by the test]"
            out[name] = Result(process.returncode, stderr)
        yield out


@pytest.mark.parametrize(
    "name",
    [n for n in CASES],
)
def test_bad_setting_exits_non_zero_naming_the_field_without_traceback(
    results: dict[str, Result], name: str
) -> None:
    result, case = results[name], CASES[name]
    shown = result.stderr[-2000:]
    assert result.code not in (0, None) and result.code > 0, f"exit {result.code}: {shown}"
    assert "Traceback" not in result.stderr, shown
    missing = [n for n in case.names if n.lower() not in result.stderr.lower()]
    assert not missing, f"stderr does not name {missing}: {shown}"
    # One clear message, not a log dump: the command's name starts the first line.
    first = result.stderr.strip().splitlines()[0]
    assert first.startswith(f"regime-trader {case.args[0]}"), shown
