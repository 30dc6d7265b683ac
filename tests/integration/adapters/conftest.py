"""The adapter tests' emulator (GLD whole shares only) and the adapters pointed at it.

The adapters talk to the emulator over real HTTP through alpaca-py; the tests drive its clock
and inject faults through ``emu`` (:mod:`tests.support.fixtures`).
"""

from __future__ import annotations

import pytest

from regime_trader.service.broker import AlpacaBroker
from regime_trader.service.marketdata import AlpacaBars
from tests.support.emulator import FAST, KEY_ID, SECRET_KEY, EmulatorDriver, emulator_config
from tests.support.fixtures import shared_emulator_fixture

shared_emulator = shared_emulator_fixture(emulator_config(non_fractionable=frozenset({"GLD"})))


@pytest.fixture
def broker(emu: EmulatorDriver) -> AlpacaBroker:
    return AlpacaBroker(KEY_ID, SECRET_KEY, url_override=emu.url, policy=FAST)


@pytest.fixture
def bars(emu: EmulatorDriver) -> AlpacaBars:
    return AlpacaBars(KEY_ID, SECRET_KEY, url_override=emu.url, policy=FAST)
