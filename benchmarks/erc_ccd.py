"""The compiled coordinate-descent limit of ERC: cyclical coordinate descent compiled by Numba.

Griveau-Richard & Roncalli's cyclical coordinate descent (CCD) minimises Spinu's objective
``1/2 y' Sigma y - sum_i b_i log y_i`` one coordinate at a time, each update the positive root
of a quadratic, ``y_i = (-c_i + sqrt(c_i**2 + 4 Sigma_ii b_i)) / (2 Sigma_ii)`` with
``c_i = (Sigma y)_i - Sigma_ii y_i``, keeping ``Sigma y`` up to date with one column per update:
a sweep is ``n**2`` multiply-adds and nothing else, so a compiled CCD is as fast as any method
that touches the matrix once per pass can be. It stops on the same quantity as ours,
``max_i |RC_i / sum(RC) - b_i| / b_i <= tol``, checked after every sweep (O(n)).

Numba is an optional benchmark dependency (``pip install numba``); without it the column is
skipped. Reference: F. Griveau-Richard, T. Roncalli, "Fast design of risk parity portfolios",
SSRN 2325255 (2013), algorithm 3.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
CcdSolver = Callable[[FloatArray, FloatArray, float, int], tuple[FloatArray, int]]

MAX_SWEEPS = 10_000


def compiled_ccd() -> CcdSolver | None:
    """Return the Numba-compiled CCD solver ``(cov, b, tol, max_sweeps) -> (w, sweeps)``.

    None when Numba is not installed. The first call compiles (seconds); time later calls.
    """
    if importlib.util.find_spec("numba") is None:
        return None
    numba = importlib.import_module("numba")

    def ccd(cov: FloatArray, b: FloatArray, tol: float, max_sweeps: int) -> tuple[FloatArray, int]:
        n = cov.shape[0]
        y = np.empty(n)
        for i in range(n):
            y[i] = 1.0 / np.sqrt(cov[i, i])
        sy = cov @ y
        scale = 1.0 / np.sqrt(y @ sy)  # the optimum along the inverse-volatility ray
        y *= scale
        sy *= scale
        for sweep in range(1, max_sweeps + 1):
            for i in range(n):
                d = cov[i, i]
                rest = sy[i] - d * y[i]
                new = (-rest + np.sqrt(rest * rest + 4.0 * d * b[i])) / (2.0 * d)
                delta = new - y[i]
                y[i] = new
                for j in range(n):
                    sy[j] += cov[j, i] * delta
            total = 0.0
            for i in range(n):
                total += y[i] * sy[i]
            err = 0.0
            for i in range(n):
                err = max(err, abs(y[i] * sy[i] / total / b[i] - 1.0))
            if err <= tol:
                return y / y.sum(), sweep
        return y / y.sum(), max_sweeps

    solver: CcdSolver = numba.njit(cache=False)(ccd)
    return solver
