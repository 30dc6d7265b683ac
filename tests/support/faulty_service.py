"""``regime-trader run`` that SIGKILLs itself at a chosen step boundary: the crash tests' launcher.

Run as ``python -m tests.support.faulty_service run [options]`` with ``RT_TEST_KILL_AT`` set to
one or more step or boundary names separated by commas (``order_sent``, ``waiting_fills``,
``planned``, ...). It builds a step hook from that variable and starts the real ``run`` command
with it (:func:`regime_trader.service.ops_cli.run_with_step_hook`): the process dies the moment a
cycle reaches one of those boundaries, after the step is stored. The service itself reads no
fault switch; only this launcher, which lives with the tests, installs one.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Sequence

from regime_trader.service.cli import build_parser
from regime_trader.service.cycle_record import Boundary, Step
from regime_trader.service.logs import get_logger
from regime_trader.service.ops_cli import run_with_step_hook
from tests.support.processes import KILL_AT_ENV

log = get_logger(__name__)
KNOWN = frozenset(Step) | frozenset(Boundary)


def kill_at(steps_text: str) -> Callable[[str], None]:
    """A step hook that SIGKILLs this process at any of the comma-separated ``steps_text``."""
    steps = {s.strip() for s in steps_text.split(",") if s.strip()}
    unknown = sorted(steps - KNOWN)
    if not steps or unknown:
        raise SystemExit(f"{KILL_AT_ENV}={steps_text!r}: name steps of {sorted(KNOWN)}")

    def hook(step: str) -> None:
        if step in steps:
            log.warning("fault injection: SIGKILL at step", step=step)
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command != "run":
        raise SystemExit(f"only the run command takes a step hook, not {args.command!r}")
    return run_with_step_hook(kill_at(os.environ.get(KILL_AT_ENV, "")))(args)


if __name__ == "__main__":
    sys.exit(main())
