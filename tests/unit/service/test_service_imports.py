"""What the long-running service imports before it needs it: not the fitting stack.

hmmlearn (with scikit-learn and ``scipy.stats``, about 70 MiB resident) is imported by a
regime strategy when it fits, and the emulator's server (its Starlette app, engine and exchange
calendar) by a process that serves the embedded emulator, apprise by one with notifier URLs;
none of them at start-up (nor jinja2 before the first dashboard page, nor arch before a GARCH
fit); nor any part of SciPy, whose LAPACK (about 18 MiB resident: its own
OpenBLAS beside NumPy's) the ERC solver does without.
"""

from __future__ import annotations

import json

from tests.support.fresh_python import run_fresh


def _imported_by(modules: list[str]) -> set[str]:
    probe = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    return set(json.loads(run_fresh(probe).splitlines()[-1]))


def test_the_service_commands_import_no_fitting_stack_nor_the_emulator_server() -> None:
    loaded = _imported_by(
        [
            "regime_trader.service.ops_cli",
            "regime_trader.service.scheduler",
            "regime_trader.service.rebalance_cli",
            "regime_trader.strategies.registry",
            "regime_trader.service.dashboard.web",
        ]
    )
    assert "regime_trader.service.app" in loaded  # the probe imported the service
    tops = {name.split(".")[0] for name in loaded}
    heavy = {"hmmlearn", "sklearn", "matplotlib", "exchange_calendars", "apprise", "scipy"}
    heavy |= {"jinja2", "arch"}  # the dashboard's templates at the first page; GARCH fits
    assert tops & heavy == set()
    assert "regime_trader.service.emulator.server" not in loaded


def test_a_regime_model_imports_hmmlearn_when_it_fits() -> None:
    probe = (
        "import sys\n"
        "import numpy as np\n"
        "from regime_trader.strategies.regime import RegimeModel\n"
        "before = 'hmmlearn' in sys.modules\n"
        "X = np.random.default_rng(0).normal(size=(200, 2))\n"
        "RegimeModel(2, n_init=1).fit(X, X[:, 0])\n"
        "print(before, 'hmmlearn' in sys.modules)\n"
    )
    assert run_fresh(probe).split() == ["False", "True"]
