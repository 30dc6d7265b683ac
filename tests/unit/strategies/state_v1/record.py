"""Write the version-1 state documents of ``state_v1/`` (run once, at commit c42bd94).

Each registered strategy, and the regime strategy on every engine with every option engaged (as
``test_strategies._fresh`` builds them), is fed the first 400 sessions of the tests' synthetic
market (``generate_market(700, seed=7)``) by the code of that commit, and its ``state_dict()``
is written as gzipped JSON. Run from a checkout of c42bd94:
``python tests/unit/strategies/state_v1/record.py OUT_DIR``.
"""

from __future__ import annotations

import gzip
import json
import sys
import warnings
from pathlib import Path

from regime_trader.strategies.regime_erc import RegimeERC, RegimeERCParams
from regime_trader.strategies.registry import STRATEGIES
from regime_trader.strategies.synthetic import generate_market

SYMBOLS = ["SPY", "TLT", "GLD"]
CUT = 400


def main() -> None:
    out = Path(sys.argv[1])
    prices = generate_market(700, seed=7).prices.iloc[:CUT]
    cases = {name: STRATEGIES[name](SYMBOLS) for name in sorted(STRATEGIES)}
    for engine in ("hmm", "jump", "sparse_jump"):
        params = {
            "engine": engine,
            "policy": {"vol_target_mode": "relative", "vol_median_days": 40},
            "rebalance": {"weight_band": 0.01, "exposure_band": 0.02},
        }
        if engine != "hmm":
            params["jump"] = {"n_init": 3, "refit_cold_starts": 1}
        cases[f"regime_erc-{engine}"] = RegimeERC(SYMBOLS, RegimeERCParams.from_dict(params))
    for case, strategy in cases.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            strategy.update(prices)
        text = json.dumps(strategy.state_dict(), allow_nan=False)
        (out / f"{case}.json.gz").write_bytes(gzip.compress(text.encode(), mtime=0))


if __name__ == "__main__":
    main()
