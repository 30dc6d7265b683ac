"""Soak: 100 sessions of ``regime-trader run`` against the emulator process (see ``soak.py``).

Checked at every session: the positions the service recorded (sum of the fills in its cycle
records) equal the broker's ``/v2/positions`` exactly; the Redis key count stays within
``FIXED_KEYS + min(n, CYCLES_MAX)`` after ``n`` sessions (one cycle hash per session, the
oldest deleted once the cycle index holds ``cycles_max`` sessions; everything else is a fixed
key: capped in size, or, for the shadow points and paper equity, one small field per session).
And once, at the end: the service's resident memory grew by less than ``RSS_GROWTH_BOUND_MIB``
after the first 10 sessions.

Measured on the reference machine (2 CPUs shared with other work, 2026-12, after issue 8):
100 sessions in about 40 s; RSS 253 MiB after the first session, +3.5 MiB from session 10 to
100; a 1000-session run (``python -m tests.reliability.soak --sessions 1000``) grew +5.6 MiB
from session 10 to 1000 (about 4 KiB per session up to 500 sessions, 7.6 KiB per session
after), keys 9 -> 407. The bound is 32 MiB: about 9 times the growth measured over 100
sessions.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from regime_trader.service.store import Store
from tests.reliability.soak import FIXED_KEYS, run_soak

# `soak` is not a registered marker yet (see the report): add it here once it is.
pytestmark = [pytest.mark.slow, pytest.mark.soak]

SESSIONS = 100
RSS_GROWTH_BOUND_MIB = 32.0
CYCLES_MAX = int(inspect.signature(Store).parameters["cycles_max"].default)


def test_a_hundred_sessions_keep_positions_memory_and_keys_in_bounds(tmp_path: Path) -> None:
    result = run_soak(SESSIONS, tmp_path)
    figures = result.summary()
    samples = result.samples

    assert len(samples) == SESSIONS, figures
    assert result.service_exit_code == 0, "SIGTERM must end the service cleanly"
    assert {s.outcome for s in samples} <= {"rebalanced", "no_trade"}, figures["outcomes"]
    assert figures["outcomes"].get("rebalanced", 0) >= SESSIONS * 0.9, figures["outcomes"]

    mismatched = {s.session: s.mismatch for s in samples if s.mismatch}
    assert not mismatched, f"service records differ from /v2/positions: {mismatched}"

    over = [(s.index, s.keys) for s in samples if s.keys > FIXED_KEYS + min(s.index, CYCLES_MAX)]
    assert not over, f"more than {FIXED_KEYS} + min(n, {CYCLES_MAX}) keys: {over[:5]}"

    assert all(s.rss_kib > 0 for s in samples), "could not read VmRSS"
    baseline = samples[9].rss_kib
    growth_mib = (max(s.rss_kib for s in samples[10:]) - baseline) / 1024
    assert growth_mib < RSS_GROWTH_BOUND_MIB, figures
