"""Pytest fixtures of the emulator, loaded for every test by ``tests/conftest.py``.

A test package that shares one emulator declares it in its ``conftest.py`` with the settings
its tests were written for::

    BASE_CONFIG = emulator_config(non_fractionable=frozenset({"GLD"}))
    shared_emulator = shared_emulator_fixture(BASE_CONFIG)
    start_emulator = start_emulator_fixture(BASE_CONFIG)

and its tests take ``emu`` (that emulator with a fresh account, the clock at
``emulator_start``, by default :data:`~tests.support.emulator.START`, and no faults) or
``start_emulator(**changes)`` (a dedicated emulator, stopped at the end of the test). Each
package builds its own fixtures because a session-scoped fixture is computed once: a shared one
could not follow a package's settings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest

from regime_trader.service.emulator import EmulatorConfig, RunningEmulator, start_in_thread
from tests.support.emulator import START, EmulatorDriver

__all__ = ["emu", "emulator_start", "shared_emulator_fixture", "start_emulator_fixture"]

StartEmulator = Callable[..., EmulatorDriver]


def shared_emulator_fixture(config: EmulatorConfig) -> Any:
    """A session fixture ``shared_emulator``: one emulator in a thread with ``config``."""

    @pytest.fixture(scope="session", name="shared_emulator")
    def shared_emulator() -> Iterator[RunningEmulator]:
        running = start_in_thread(config)
        yield running
        running.stop()

    return shared_emulator


def start_emulator_fixture(config: EmulatorConfig) -> Any:
    """A fixture ``start_emulator(**changes)``: dedicated emulators with ``config`` changed
    by ``changes`` (:class:`EmulatorConfig` fields), all stopped at the end of the test."""

    @pytest.fixture(name="start_emulator")
    def start_emulator() -> Iterator[StartEmulator]:
        started: list[EmulatorDriver] = []

        def start(**changes: Any) -> EmulatorDriver:
            driver = EmulatorDriver.attach(start_in_thread(replace(config, **changes)))
            started.append(driver)
            return driver

        yield start
        for driver in started:
            driver.close()
            assert driver.running is not None
            driver.running.stop()

    return start_emulator


@pytest.fixture
def emulator_start() -> datetime:
    """Where ``emu`` puts the clock: START, unless a package's conftest says otherwise."""
    return START


@pytest.fixture
def emu(shared_emulator: RunningEmulator, emulator_start: datetime) -> Iterator[EmulatorDriver]:
    """The package's shared emulator with a fresh account, the clock at ``emulator_start`` and
    no faults."""
    with EmulatorDriver.attach(shared_emulator) as driver:
        driver.clear_faults()
        driver.reset(timestamp=emulator_start)
        yield driver
        driver.clear_faults()
