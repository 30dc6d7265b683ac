"""One embedded emulator per state file: a second service uses the running one, or refuses.

Before, every :meth:`Service.create` without Alpaca keys started its own emulator on the same
``emulator.json``: two accounts, each overwriting the other's file.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from regime_trader.service.app import EMULATOR_HOLDER_WAIT_SECS, Service
from regime_trader.service.config import load_settings
from regime_trader.service.emulator.instance_lock import (
    EmulatorInstance,
    EmulatorInUseError,
    StateFileLock,
)
from regime_trader.service.exceptions import OperationalError
from tests.integration.service.offline_service import offline_env

__all__ = ["offline_env"]


def test_a_second_service_on_the_same_state_file_uses_the_running_emulator(
    offline_env: Path,
) -> None:
    first = Service.create(load_settings())
    try:
        second = Service.create(load_settings())
        try:
            assert first.emulator is not None and second.emulator is not None
            assert first.emulator.owned and not second.emulator.owned
            assert second.emulator.url == first.emulator.url
            assert second.status()["emulator"]["served_by_pid"] == os.getpid()
            # The second talks to the same account through the first's key pair.
            account_1 = first.contexts["default"].broker.account()
            account_2 = second.contexts["default"].broker.account()
            assert account_2 == account_1
        finally:
            second.close()  # does not stop the first's emulator
        assert first.contexts["default"].broker.clock() is not None
        published = json.loads((offline_env / "emulator.json.lock").read_text())
        assert published["url"] == first.emulator.url and published["pid"] == os.getpid()
        assert (offline_env / "emulator.json.lock").stat().st_mode & 0o077 == 0
    finally:
        first.close()
    # Released: the next service starts an emulator of its own on the same state.
    third = Service.create(load_settings())
    try:
        assert third.emulator is not None and third.emulator.owned
    finally:
        third.close()


def test_a_held_state_file_whose_emulator_does_not_answer_is_refused_naming_the_holder(
    offline_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    holder = StateFileLock(offline_env / "emulator.json")
    assert holder.acquire()
    holder.publish(EmulatorInstance(4242, "http://127.0.0.1:9", "k", "s"))
    monkeypatch.setattr("regime_trader.service.app.EMULATOR_HOLDER_WAIT_SECS", 0.5)
    try:
        with pytest.raises(OperationalError, match=r"in use by process 4242 .*RT_DATA_DIR"):
            Service.create(load_settings())
    finally:
        holder.release()
    assert EMULATOR_HOLDER_WAIT_SECS > 0.5  # the real wait gives a starting holder time


def test_the_lock_is_exclusive_between_open_files_and_free_once_released(tmp_path: Path) -> None:
    state = tmp_path / "emulator.json"
    one, two = StateFileLock(state), StateFileLock(state)
    assert one.acquire() and not two.acquire()
    assert two.read() is None  # nothing published yet: a waiter keeps waiting
    with pytest.raises(EmulatorInUseError, match="in use by another process"):
        two.wait_for_holder(lambda _: True, timeout_secs=0.0)
    one.publish(EmulatorInstance(1, "http://127.0.0.1:1", "key", "secret"))
    found: Any = two.wait_for_holder(lambda instance: instance.pid == 1, timeout_secs=0.0)
    assert found.url == "http://127.0.0.1:1"
    one.release()
    assert two.acquire()
    assert two.read() is None  # the previous holder's address is gone with it
    two.release()


def test_run_serves_the_emulator_itself_once_a_one_shot_command_lets_it_go(
    offline_env: Path,
) -> None:
    one_shot = Service.create(load_settings())  # e.g. an offline `rebalance` still running
    threading.Timer(1.0, one_shot.close).start()
    serving = Service.create(load_settings(), serve_emulator=True)  # `run`
    try:
        assert serving.emulator is not None and serving.emulator.owned
        assert serving.contexts["default"].broker.clock() is not None
    finally:
        serving.close()


def test_run_is_refused_while_another_process_keeps_serving_the_emulator(
    offline_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("regime_trader.service.app.EMULATOR_SERVE_WAIT_SECS", 0.5)
    first = Service.create(load_settings(), serve_emulator=True)
    try:
        with pytest.raises(OperationalError, match=rf"served by process {os.getpid()}"):
            Service.create(load_settings(), serve_emulator=True)
    finally:
        first.close()
