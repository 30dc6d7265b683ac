"""Speed and accuracy of the ERC solver against SciPy SLSQP and skfolio's RiskBudgeting.

Run ``python benchmarks/erc.py [--repeats 15]``. For each size N a seeded, realistic daily
covariance is built (a market factor with betas ~ N(1, 0.3) and two style factors, total
annualised volatilities 10-40%), and three solvers compute equal-risk-contribution weights:

(a) :func:`regime_trader.strategies.riskparity.risk_budget_weights` (Spinu's convex formulation,
Newton); (b) ``scipy.optimize.minimize(method="SLSQP")`` on the textbook objective
    ``sum_i (RC_i / sum(RC) - 1/N)**2`` with bounds ``0 <= w <= 1`` and ``sum(w) = 1``, from
    ``w = 1/N``, SciPy's default ``ftol`` and finite-difference gradients, ``maxiter`` capped;
(c) skfolio's ``RiskBudgeting`` (variance risk measure, its default CLARABEL solver), fitted
    on the *same* covariance: an :class:`EmpiricalPrior` whose covariance estimator returns the
    given matrix unchanged (``nearest=False``); the returns it is fitted on (simulated from the
    covariance) are then only used for the mean, which the problem does not involve.

Every method's accuracy is measured the same way, on the same covariance:
``max_i |RC_i / sum(RC) - 1/N| * N`` with ``RC_i = w_i (Sigma w)_i``. Time per solve is the
median over repeats (fewer repeats for solves taking over a second, so the whole run stays
within a few minutes). skfolio is an optional extra (``pip install .[bench]``).
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.erc_ccd import MAX_SWEEPS, compiled_ccd
from regime_trader.strategies.riskparity import risk_budget_weights

FloatArray = npt.NDArray[np.float64]

SIZES = (3, 10, 50, 200, 500)
TRADING_DAYS = 252
SLOW_SOLVE_SECS = 1.0
"""Solves slower than this are repeated only as often as ``SLOW_BUDGET_SECS`` allows."""
SLOW_BUDGET_SECS = 20.0


def realistic_covariance(n: int, seed: int) -> FloatArray:
    """Return a seeded daily covariance of shape (n, n) from a three-factor model.

    Market betas ~ N(1, 0.3), two style factors with loadings ~ N(0, 0.5); annualised factor
    volatilities 16%, 8%, 8%; idiosyncratic variance fills each asset up to a total annualised
    volatility drawn from U(10%, 40%) (at least 5% idiosyncratic volatility).
    """
    rng = np.random.default_rng(seed)
    betas = np.column_stack([rng.normal(1.0, 0.3, n), rng.normal(0.0, 0.5, (n, 2))])
    factor_var = (np.array([0.16, 0.08, 0.08]) ** 2) / TRADING_DAYS
    systematic = (betas**2) @ factor_var
    total = rng.uniform(0.10, 0.40, n) ** 2 / TRADING_DAYS
    idiosyncratic = np.maximum(total - systematic, 0.05**2 / TRADING_DAYS)
    cov: FloatArray = (betas * factor_var) @ betas.T + np.diag(idiosyncratic)
    return (cov + cov.T) / 2.0


def erc_error(weights: FloatArray, cov: FloatArray) -> float:
    """Return ``max_i |RC_i / sum(RC) - 1/N| * N`` (the same measure for every method)."""
    rc = weights * (cov @ weights)
    return float(np.max(np.abs(rc / rc.sum() * len(weights) - 1.0)))


@dataclass(frozen=True)
class Outcome:
    """Median seconds per solve, the weights of the last solve and a note."""

    secs: float
    weights: FloatArray
    note: str = ""


def timed(solve: Callable[[], tuple[FloatArray, str]], repeats: int) -> Outcome:
    """Run ``solve`` once to warm up and size the repeats; return the median time."""
    start = time.perf_counter()
    weights, note = solve()
    first = time.perf_counter() - start
    if first > SLOW_SOLVE_SECS:
        repeats = max(1, min(repeats, int(SLOW_BUDGET_SECS / first)))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        weights, note = solve()
        times.append(time.perf_counter() - start)
    return Outcome(statistics.median(times), weights, note)


def ours(cov: FloatArray, proven: bool = False) -> tuple[FloatArray, str]:
    """Solve with :func:`risk_budget_weights` (a warning would be shown, none expected).

    ``proven``: the caller has proven ``cov`` positive definite, as the strategies have
    (``regularize``), so no Cholesky factorisation re-proves it.
    """
    return risk_budget_weights(cov, assume_positive_definite=proven), ""


def slsqp(cov: FloatArray, maxiter: int) -> tuple[FloatArray, str]:
    """Solve the textbook least-squares ERC objective with SciPy's SLSQP."""
    n = cov.shape[0]

    def objective(w: FloatArray) -> float:
        rc = w * (cov @ w)
        return float(np.sum((rc / rc.sum() - 1.0 / n) ** 2))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # values at bounds in finite differences
        result = minimize(
            objective,
            np.full(n, 1.0 / n),
            method="SLSQP",
            bounds=[(0.0, 1.0)] * n,
            constraints=[{"type": "eq", "fun": lambda w: float(np.sum(w)) - 1.0}],
            options={"maxiter": maxiter},
        )
    note = f"nit={result.nit} success={result.success}"
    if not result.success:
        note += f" NOT CONVERGED ({result.message})"
    return np.asarray(result.x, dtype=np.float64), note


def skfolio_solver() -> Callable[[FloatArray, FloatArray], tuple[FloatArray, str]] | None:
    """Return a solve function for skfolio's RiskBudgeting, or None if skfolio is missing."""
    if importlib.util.find_spec("skfolio") is None:
        return None
    from skfolio.measures import RiskMeasure
    from skfolio.moments import BaseCovariance
    from skfolio.optimization import RiskBudgeting
    from skfolio.prior import EmpiricalPrior

    class GivenCovariance(BaseCovariance):  # type: ignore[misc]
        """A covariance 'estimator' that returns a given matrix untouched."""

        def __init__(self, covariance: FloatArray | None = None) -> None:
            super().__init__(nearest=False)
            self.covariance = covariance

        def fit(self, X: Any, y: Any = None, **fit_params: Any) -> GivenCovariance:
            self._set_covariance(np.array(self.covariance, dtype=np.float64))
            self.location_ = np.zeros(self.covariance_.shape[0])
            return self

    def solve(cov: FloatArray, returns: FloatArray) -> tuple[FloatArray, str]:
        model = RiskBudgeting(
            risk_measure=RiskMeasure.VARIANCE,
            prior_estimator=EmpiricalPrior(covariance_estimator=GivenCovariance(cov)),
        )
        model.fit(returns)
        used = model.prior_estimator_.return_distribution_.covariance
        note = "" if np.array_equal(used, cov) else "COVARIANCE ALTERED"
        return np.asarray(model.weights_, dtype=np.float64), note

    return solve


def blas_threads() -> str:
    """Describe the BLAS threading in effect (timings depend on it)."""
    if importlib.util.find_spec("threadpoolctl") is None:
        return "unknown (threadpoolctl not installed)"
    threadpoolctl = importlib.import_module("threadpoolctl")
    pools = [f"{p['internal_api']}={p['num_threads']}" for p in threadpoolctl.threadpool_info()]
    return ", ".join(pools) or "none loaded"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=15, help="timed solves per method (15)")
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=list(SIZES), help="numbers of assets"
    )
    parser.add_argument("--seed", type=int, default=2024, help="covariance seed (2024)")
    parser.add_argument("--slsqp-maxiter", type=int, default=100, help="SLSQP iteration cap (100)")
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=None,
        help="limit BLAS threads for every method (needs threadpoolctl); default: as is",
    )
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1; got {args.repeats}")
    if args.blas_threads is None:
        return run(args)
    if importlib.util.find_spec("threadpoolctl") is None:
        parser.error("--blas-threads needs threadpoolctl (pip install threadpoolctl)")
    threadpoolctl = importlib.import_module("threadpoolctl")
    with threadpoolctl.threadpool_limits(limits=args.blas_threads, user_api="blas"):
        return run(args)


def run(args: argparse.Namespace) -> int:
    """Print the environment, then one table row per size."""
    sk_solve = skfolio_solver()
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, "
        f"{os.cpu_count()} CPUs, BLAS threads: {blas_threads()}"
    )
    if sk_solve is None:
        print("skfolio is not installed (pip install '.[bench]'): its column is skipped")
    else:
        import skfolio

        print(
            f"skfolio {skfolio.__version__}: RiskBudgeting fitted with the exact covariance "
            "(EmpiricalPrior + a fixed covariance estimator, nearest=False)"
        )
    print(
        "accuracy = max_i |RC_i/sum(RC) - 1/N| * N on the same covariance; "
        "time = median seconds per solve; ratio = their time / ours"
    )
    header = (
        f"{'N':>4} | {'ours':>9} {'acc':>7} | {'SLSQP':>9} {'x':>7} {'acc':>7} | "
        f"{'skfolio':>9} {'x':>7} {'acc':>7} | notes"
    )
    print_header(header)
    for n, cov in sized_covariances(args):
        a = timed(functools.partial(ours, cov), args.repeats)
        b = timed(functools.partial(slsqp, cov, args.slsqp_maxiter), args.repeats)
        row = (
            f"{n:>4} | {fmt_secs(a.secs)} {erc_error(a.weights, cov):7.1e} | "
            f"{fmt_secs(b.secs)} {b.secs / a.secs:6.0f}x {erc_error(b.weights, cov):7.1e} | "
        )
        notes = [f"SLSQP {b.note}"]
        if sk_solve is None:
            row += f"{'-':>9} {'-':>7} {'-':>7} | "
        else:
            returns = np.random.default_rng(args.seed).multivariate_normal(
                np.zeros(n), cov, size=2 * n + 10, method="cholesky"
            )
            c = timed(functools.partial(sk_solve, cov, returns), args.repeats)
            row += f"{fmt_secs(c.secs)} {c.secs / a.secs:6.0f}x {erc_error(c.weights, cov):7.1e} | "
            if c.note:
                notes.append(f"skfolio {c.note}")
        print(row + "; ".join(notes), flush=True)
    limit_table(args)
    return 0


def limit_table(args: argparse.Namespace) -> None:
    """Print ours against the compiled coordinate-descent limit (Numba CCD), per size.

    Two rows of ours: proving positive definiteness by a Cholesky factorisation (the default,
    what every call did before), and with it proven by the caller (how the strategies call
    the solver, after ``regularize``).
    """
    ccd = compiled_ccd()
    print("\nagainst the compiled coordinate-descent limit (Numba CCD, same tol 1e-10)")
    if ccd is None:
        print("numba is not installed (pip install numba): the comparison is skipped")
        return
    ccd(realistic_covariance(3, 0), np.full(3, 1.0 / 3.0), 1e-10, MAX_SWEEPS)  # compile
    header = (
        f"{'N':>4} | {'CCD':>9} {'sweeps':>6} {'acc':>7} | {'ours, PD check':>14} {'x CCD':>6} | "
        f"{'ours, PD proven':>15} {'x CCD':>6} {'acc':>7}"
    )
    print_header(header)
    for n, cov in sized_covariances(args):
        budgets = np.full(n, 1.0 / n)
        sweeps = ccd(cov, budgets, 1e-10, MAX_SWEEPS)[1]

        def run_ccd(cov: FloatArray = cov, budgets: FloatArray = budgets) -> tuple[FloatArray, str]:
            return ccd(cov, budgets, 1e-10, MAX_SWEEPS)[0], ""

        limit = timed(run_ccd, args.repeats)
        checked = timed(functools.partial(ours, cov), args.repeats)
        proven = timed(functools.partial(ours, cov, True), args.repeats)
        print(
            f"{n:>4} | {fmt_secs(limit.secs)} {sweeps:>6} {erc_error(limit.weights, cov):7.1e} | "
            f"{fmt_secs(checked.secs):>14} {checked.secs / limit.secs:5.1f}x | "
            f"{fmt_secs(proven.secs):>15} {proven.secs / limit.secs:5.1f}x "
            f"{erc_error(proven.weights, cov):7.1e}",
            flush=True,
        )


def print_header(header: str) -> None:
    """Print a table's header line, underlined to its width."""
    print(header)
    print("-" * len(header))


def sized_covariances(args: argparse.Namespace) -> Iterator[tuple[int, FloatArray]]:
    """Each size asked for, with its covariance (seeded by the size: the same in every table)."""
    for n in args.sizes:
        yield n, realistic_covariance(n, args.seed + n)


def fmt_secs(secs: float) -> str:
    """Format seconds with a unit, right-aligned in 9 characters."""
    if secs < 1e-3:
        return f"{secs * 1e6:6.1f} us"
    if secs < 1.0:
        return f"{secs * 1e3:6.2f} ms"
    return f"{secs:7.2f} s"


if __name__ == "__main__":
    sys.exit(main())
