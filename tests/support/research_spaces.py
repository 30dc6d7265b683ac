"""Search-space TOML the research tests share."""

from __future__ import annotations

# A conditional parameter: drift_margin is sampled only in trials that chose 3 states.
STATES_WITH_DRIFT_MARGIN = """
[[parameter]]
path = "regime.n_states"
choice = [2, 3]

[[parameter]]
path = "regime.drift_margin"
float = { low = 0.5, high = 2.0 }
when = { path = "regime.n_states", in = [3] }
"""
