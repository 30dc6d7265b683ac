"""The ERC solver's positive definite solves on NumPy alone (no SciPy, issue 11)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from regime_trader.strategies.riskparity_linalg import (
    CholeskyFactor,
    LinAlgError,
    first_indefinite_minor,
)

ROOT = Path(__file__).resolve().parents[3]


def _spd(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(2 * n + 5, n))
    return np.atleast_2d(np.corrcoef(x.T)) + 0.05 * np.eye(n)


# Sizes around the diagonal blocks' order (64) and the triangular inverses' leaves (8).
@pytest.mark.parametrize("n", [1, 2, 7, 8, 9, 63, 64, 65, 129, 200])
def test_a_solve_with_the_factor_matches_a_direct_solve(n: int) -> None:
    h = _spd(n, seed=n)
    g = np.random.default_rng(n + 1).normal(size=n)
    factor = CholeskyFactor(np.asfortranarray(h))
    for rhs in (g, 2.0 * g + 1.0):  # the factor serves several right-hand sides
        x = factor.solve(rhs)
        assert x.shape == (n,)
        np.testing.assert_allclose(h @ x, rhs, rtol=0.0, atol=1e-11 * (1.0 + np.abs(rhs).max()))
        np.testing.assert_allclose(x, np.linalg.solve(h, rhs), rtol=1e-10, atol=1e-12)


def test_only_the_lower_triangle_is_read() -> None:
    h = _spd(70, seed=3)
    garbage = np.triu(np.full_like(h, 1e6), k=1)  # above the diagonal only
    g = np.arange(70.0)
    np.testing.assert_allclose(
        CholeskyFactor(np.tril(h) + garbage).solve(g), np.linalg.solve(h, g), rtol=1e-10
    )


def test_an_indefinite_matrix_does_not_factorise() -> None:
    with pytest.raises(LinAlgError):
        CholeskyFactor(np.array([[1.0, 2.0], [2.0, 1.0]]))


@pytest.mark.parametrize(
    ("h", "minor"),
    [
        (np.eye(4), 0),
        (np.ones((3, 3)), 2),
        (np.array([[1.0, 2.0], [2.0, 1.0]]), 2),
        (np.diag([1.0, 2.0, 3.0, -1.0, 5.0]), 4),
        (np.diag([-1.0, 2.0]), 1),
    ],
)
def test_the_first_indefinite_minor_is_lapacks_info(h: np.ndarray, minor: int) -> None:
    assert first_indefinite_minor(h) == minor


def test_the_erc_solver_imports_no_scipy() -> None:
    # SciPy's LAPACK brings its own OpenBLAS (about 18 MiB resident) into the service.
    probe = (
        "import sys\n"
        "import numpy as np\n"
        "from regime_trader.strategies.riskparity import solve_risk_budget\n"
        "for n in (3, 200):  # an LU solve; Cholesky factors reused by chord steps\n"
        "    solve_risk_budget(np.diag(np.arange(1.0, n + 1.0)) + 0.5)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'scipy'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert done.stdout.split() == ["[]"]
