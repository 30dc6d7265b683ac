"""The emulator tests' emulators: a cash account (multiplier 1) with GLD in whole shares only.

The tests were written for a cash account; margin has its own tests (``multiplier=2``
through ``start_emulator``). ``emu`` and ``start_emulator`` are :mod:`tests.support.fixtures`'.
"""

from __future__ import annotations

from tests.support.emulator import emulator_config
from tests.support.fixtures import shared_emulator_fixture, start_emulator_fixture

BASE_CONFIG = emulator_config(non_fractionable=frozenset({"GLD"}), multiplier=1)

shared_emulator = shared_emulator_fixture(BASE_CONFIG)
start_emulator = start_emulator_fixture(BASE_CONFIG)
