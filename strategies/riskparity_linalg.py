"""Symmetric positive definite solves for the ERC solver on NumPy's LAPACK alone.

NumPy has a Cholesky factorisation (``numpy.linalg.cholesky``) but no triangular solve, and
the Newton solver of :mod:`regime_trader.strategies.riskparity_newton` reuses one factor for
several right-hand sides (its chord steps). :class:`CholeskyFactor` therefore keeps the factor
``L`` with the inverses of its diagonal blocks: a solve is a blocked forward and backward
substitution, two matrix-vector products per block, at about the cost of LAPACK's ``dpotrs``.

Why not SciPy's ``scipy.linalg.lapack``: it loads its own copy of OpenBLAS beside NumPy's
(about 18 MiB resident, and a second set of BLAS thread buffers), which the long-running
service would hold for this solver alone (issue 11).
"""

from __future__ import annotations

from itertools import pairwise
from typing import Final, TypeAlias

import numpy as np
import numpy.typing as npt

__all__ = ["CholeskyFactor", "LinAlgError", "first_indefinite_minor"]

_Array: TypeAlias = npt.NDArray[np.float64]

LinAlgError: Final = np.linalg.LinAlgError
"""Raised by a factorisation of a matrix that is not (numerically) positive definite."""

_BLOCK: Final = 64
"""Order of the diagonal blocks: large enough that a block solve is one BLAS call, small
enough that inverting the blocks costs a few percent of the factorisation."""
_LEAF: Final = 8
"""Order below which a triangular block is inverted by LU (``numpy.linalg.inv``)."""


class CholeskyFactor:
    """The Cholesky factor ``L`` of a symmetric positive definite ``H = L L'``, for solves.

    Only the lower triangle of ``H`` is read (as LAPACK's ``dpotrf`` with ``lower=1``).

    Raises
    ------
    numpy.linalg.LinAlgError
        If ``H`` is not positive definite.
    """

    __slots__ = ("_blocks", "_lower")

    def __init__(self, h: _Array) -> None:
        lower: _Array = np.asarray(np.linalg.cholesky(h), dtype=np.float64)
        n = lower.shape[0]
        edges = [*range(0, n, _BLOCK), n]
        diagonal = [lower[a:b, a:b] for a, b in pairwise(edges)]
        whole = n // _BLOCK  # blocks of order _BLOCK, inverted together; then a smaller one
        inverses = list(_lower_inverses(np.stack(diagonal[:whole]))) if whole else []
        if whole < len(diagonal):
            inverses.append(_lower_inverses(diagonal[-1][None])[0])
        self._blocks = [(a, b, inv) for (a, b), inv in zip(pairwise(edges), inverses, strict=True)]
        self._lower = lower

    def solve(self, g: _Array) -> _Array:
        """Return ``x`` with ``H x = g``: ``L z = g`` forward, then ``L' x = z`` backward."""
        lower = self._lower
        z = np.empty_like(g)
        _, b0, inv0 = self._blocks[0]
        z[:b0] = inv0 @ g[:b0]
        for a, b, inv in self._blocks[1:]:
            z[a:b] = inv @ (g[a:b] - lower[a:b, :a] @ z[:a])
        x = np.empty_like(g)
        for a, b, inv in reversed(self._blocks):
            x[a:b] = (z[a:b] - x[b:] @ lower[b:, a:b]) @ inv
        return x


def first_indefinite_minor(h: _Array) -> int:
    """Return the order ``k`` of the first leading principal minor of ``h`` that is not PD.

    What LAPACK's ``dpotrf`` reports as ``info`` (0 when ``h`` is positive definite). A
    leading block factorises exactly when every smaller one does, so a bisection on the
    order finds it in ``log2(n)`` factorisations; only an error message needs it.
    """
    n = int(h.shape[0])
    if _factorises(h):
        return 0
    lo, hi = 0, n  # the block of order lo factorises; the one of order hi does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _factorises(h[:mid, :mid]):
            lo = mid
        else:
            hi = mid
    return hi


def _lower_inverses(t: _Array) -> _Array:
    """Return the inverses of a stack ``t`` of shape (m, s, s) of lower triangular matrices.

    By halves, ``[[A, 0], [C, B]]^-1 = [[A^-1, 0], [-B^-1 C A^-1, B^-1]]``, every block of the
    stack at once: a few batched matrix products instead of ``m`` LU inverses, which cost
    eight times the flops of a triangular inverse and dominate at these small orders.
    """
    m, s, _ = t.shape
    if s <= _LEAF:
        return np.asarray(np.linalg.inv(t), dtype=np.float64)
    h = s // 2
    if h + h == s:  # both halves in one recursive call
        halves = _lower_inverses(np.concatenate((t[:, :h, :h], t[:, h:, h:])))
        first, second = halves[:m], halves[m:]
    else:
        first, second = _lower_inverses(t[:, :h, :h]), _lower_inverses(t[:, h:, h:])
    out = np.zeros_like(t)
    out[:, :h, :h] = first
    out[:, h:, h:] = second
    out[:, h:, :h] = -((second @ t[:, h:, :h]) @ first)
    return out


def _factorises(h: _Array) -> bool:
    try:
        np.linalg.cholesky(h)
    except LinAlgError:
        return False
    return True
