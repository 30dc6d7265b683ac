"""Per-asset GARCH(1,1) and GJR-GARCH(1,1,1) variance forecasts, refitted monthly.

:class:`GarchCovariance` fits one zero-mean, Gaussian GARCH model per asset with the ``arch``
package on a bounded trailing window of daily returns, and between fits advances each asset's
one-day-ahead variance with the fitted recursion, written out here so the daily step is exact
and cheap (no refit, no ``arch`` call):

    sigma2_{t+1} = omega + alpha e_t^2 [+ gamma e_t^2 1{e_t < 0}] + beta sigma2_t,

with ``e_t = 100 r_t``: returns are scaled to percent for ``arch``'s optimiser, as its
documentation recommends, and the forecasts scaled back. Refits follow the regime engines'
calendar (:class:`GarchSettings`: the first fit once ``min_train_obs`` returns exist, then the
first bar of every ``refit_months``-th new month, on the last ``max_train_obs`` returns); right
after a fit the forecast is ``arch``'s own one-step forecast of the window. Everything is
causal: the forecast made at the close of day t reads returns up to t only.

:meth:`GarchCovariance.covariance` combines the variances with the correlation of a reference
covariance (the strategy's EWMA): ``D R D`` with ``D`` the GARCH volatilities, so only the
variances change. A fit that fails for an asset keeps that asset's previous parameters (the
error is reported); an asset never fitted takes the reference's own variance, and
:meth:`GarchCovariance.diagnostics` names it.

``arch`` (with statsmodels, about two seconds to import) is imported by the first fit, not by
importing this module, so the service does not load it at start-up.

References
----------
T. Bollerslev, "Generalized autoregressive conditional heteroskedasticity", J. Econometrics
31(3), 1986; L. Glosten, R. Jagannathan and D. Runkle, "On the relation between the expected
value and the volatility of the nominal excess return on stocks", J. Finance 48(5), 1993.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd

from regime_trader.strategies._checks import check_choice
from regime_trader.strategies.params import record_from_dict, record_to_dict
from regime_trader.strategies.regime_window import check_schedule, months_between

__all__ = [
    "GarchCovariance",
    "GarchFitError",
    "GarchKind",
    "GarchSettings",
    "fit_garch",
    "garch_step",
    "with_variances",
]

GarchKind = Literal["garch", "gjr"]
SCALE = 100.0
"""Returns are fitted in percent: ``arch``'s optimiser is tuned for variances near 1."""
_N_PARAMS = 4  # omega, alpha, gamma (0 for GARCH), beta
_TOLERANCE = 1e-6  # of the optimiser's constraints (alpha + gamma / 2 + beta <= 1)


class GarchFitError(ValueError):
    """A GARCH fit that did not converge or gave parameters unfit for forecasting."""


@dataclass(frozen=True)
class GarchSettings:
    """Training window and refit calendar of the GARCH variances.

    The defaults are the HMM engine's (:class:`~regime_trader.strategies.regime_online.
    RegimeSettings`): the first fit after about a year, monthly refits on at most ten years,
    so the variances are fitted by the time the regimes are.

    Parameters
    ----------
    min_train_obs : int, default 250
        Returns needed before the first fit.
    max_train_obs : int, default 2520
        Longest training window; older returns are forgotten.
    refit_months : int, default 1
        Refit on the first bar of every ``refit_months``-th new month; 0 never refits.
    """

    min_train_obs: int = 250
    max_train_obs: int = 2520
    refit_months: int = 1

    def __post_init__(self) -> None:
        check_schedule(self.min_train_obs, self.max_train_obs, self.refit_months)


def fit_garch(returns: np.ndarray, kind: GarchKind) -> tuple[np.ndarray, float]:
    """Fit one asset's zero-mean Gaussian GARCH(1,1) or GJR-GARCH(1,1,1) with ``arch``.

    Parameters
    ----------
    returns : ndarray of shape (n_obs,)
        Daily returns (fractions, not percent), oldest first.
    kind : {"garch", "gjr"}

    Returns
    -------
    params : ndarray of shape (4,)
        ``omega, alpha, gamma, beta`` in percent units (``gamma`` 0 for GARCH).
    next_variance : float
        ``arch``'s one-step forecast after the last return, in percent squared.

    Raises
    ------
    GarchFitError
        If the optimiser did not converge, or the parameters are not finite, not positive
        where they must be, or their persistence exceeds 1.
    """
    from arch import arch_model  # heavy (statsmodels): only when a fit runs

    y = SCALE * np.asarray(returns, dtype=float)
    o = 1 if kind == "gjr" else 0
    model = arch_model(y, mean="Zero", vol="GARCH", p=1, o=o, q=1, dist="normal", rescale=False)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence is checked below, not warned about
            result = model.fit(disp="off", show_warning=False)
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as e:
        raise GarchFitError(f"{kind} fit raised {type(e).__name__}: {e}") from e
    if result.convergence_flag != 0:
        raise GarchFitError(f"{kind} fit did not converge: {result.optimization_result.message}")
    fitted = np.asarray(result.params, dtype=float)
    params = fitted if o else np.array([fitted[0], fitted[1], 0.0, fitted[2]])
    omega, alpha, gamma, beta = (float(v) for v in params)
    # arch's own constraints (gamma may be negative down to -alpha); a persistence at its bound
    # of 1 (integrated, like an EWMA) still forecasts one day ahead well.
    persistence = alpha + 0.5 * gamma + beta
    positive = omega > 0 and min(alpha, alpha + gamma, beta) >= -_TOLERANCE
    usable = positive and persistence <= 1.0 + _TOLERANCE
    if not (np.all(np.isfinite(params)) and usable):
        raise GarchFitError(f"{kind} fit unusable: params {params.tolist()}")
    forecast = result.forecast(horizon=1, reindex=False).variance.to_numpy()
    return params, float(forecast[-1, 0])


def garch_step(params: np.ndarray, variance: np.ndarray, scaled: np.ndarray) -> np.ndarray:
    """The fitted recursion, one day, every asset: tomorrow's variance from today's.

    Parameters
    ----------
    params : ndarray of shape (n_assets, 4)
        ``omega, alpha, gamma, beta`` per asset (percent units).
    variance : ndarray of shape (n_assets,)
        Today's variance forecast (made yesterday), percent squared.
    scaled : ndarray of shape (n_assets,)
        Today's returns in percent.
    """
    omega, alpha, gamma, beta = params.T
    e2 = scaled * scaled
    out: np.ndarray = omega + alpha * e2 + gamma * e2 * (scaled < 0) + beta * variance
    return out


def with_variances(reference: np.ndarray, variances: np.ndarray) -> np.ndarray:
    """``reference``'s correlation with ``variances`` on the diagonal (NaN: its own).

    Parameters
    ----------
    reference : ndarray of shape (n, n)
        A covariance (the EWMA); a zero variance gives that asset zero correlations.
    variances : ndarray of shape (n,)
        Variances in return units; NaN where the reference's own variance stays.
    """
    ref_var = np.diag(reference).copy()
    target = np.where(np.isfinite(variances), variances, ref_var)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(ref_var > 0, np.sqrt(target / ref_var), 0.0)
    out = reference * np.outer(ratio, ratio)
    np.fill_diagonal(out, target)  # exact, whatever the reference's scale
    return np.asarray(out)


class GarchCovariance:
    """Per-asset GARCH variance forecasts on a refit calendar (see the module docstring).

    Parameters
    ----------
    n_assets : int
    kind : {"garch", "gjr"}, default "garch"
        GARCH(1,1), or GJR-GARCH(1,1,1) with its extra response to negative returns.
    settings : GarchSettings, optional

    Attributes
    ----------
    fitted_ : ndarray of shape (n_assets,), bool
        Whether the asset has ever been fitted (the others take the reference's variance).
    params_ : ndarray of shape (n_assets, 4)
        ``omega, alpha, gamma, beta`` per asset in percent units (zeros where not fitted).
    variance_ : ndarray of shape (n_assets,)
        Tomorrow's variance, percent squared (zero where not fitted).
    fit_errors_ : list of str or None
        Per asset, why its last fit failed (None: it succeeded, or none was tried).
    """

    def __init__(
        self, n_assets: int, kind: GarchKind = "garch", settings: GarchSettings | None = None
    ) -> None:
        check_choice("kind", kind, get_args(GarchKind))
        self.n_assets = n_assets
        self.kind: GarchKind = kind
        self.settings = settings or GarchSettings()
        # Zeros, not NaN, where not fitted: a state is JSON without NaN.
        self.fitted_ = np.zeros(n_assets, dtype=bool)
        self.params_ = np.zeros((n_assets, _N_PARAMS))
        self.variance_ = np.zeros(n_assets)
        self.fit_errors_: list[str | None] = [None] * n_assets
        self.n_fits_ = 0
        self.last_fit_: pd.Timestamp | None = None
        self._ring = np.empty((self.settings.max_train_obs, n_assets))
        self._start = 0  # ring index of the oldest return
        self._len = 0

    def update(self, date: pd.Timestamp, returns: np.ndarray) -> str | None:
        """Add the returns of ``date`` (shape (n_assets,), finite); refit when due.

        Returns
        -------
        str or None
            ``"initial"`` or ``"scheduled"`` on a fit day, else None.
        """
        r = np.asarray(returns, dtype=float)
        self._append(r)
        # Unfitted rows are zeros and stay zeros: the step needs no mask.
        self.variance_ = garch_step(self.params_, self.variance_, SCALE * r)
        reason = self._due(date)
        if reason is not None:
            self._refit(date)
        return reason

    def _due(self, date: pd.Timestamp) -> str | None:
        if self.last_fit_ is None:
            return "initial" if self._len >= self.settings.min_train_obs else None
        months = self.settings.refit_months
        if months and months_between(self.last_fit_, date) >= months:
            return "scheduled"
        return None

    def _refit(self, date: pd.Timestamp) -> None:
        window = self.window()
        for i in range(self.n_assets):
            try:
                params, next_variance = fit_garch(window[:, i], self.kind)
            except GarchFitError as e:  # the previous parameters and variance carry on
                self.fit_errors_[i] = str(e)
                continue
            self.params_[i], self.variance_[i] = params, next_variance
            self.fitted_[i] = True
            self.fit_errors_[i] = None
        self.last_fit_ = date
        self.n_fits_ += 1

    def _append(self, r: np.ndarray) -> None:
        size = self.settings.max_train_obs
        if self._len < size:
            self._ring[(self._start + self._len) % size] = r
            self._len += 1
        else:
            self._ring[self._start] = r
            self._start = (self._start + 1) % size

    def window(self) -> np.ndarray:
        """The training window, oldest first, shape (n_obs, n_assets) (a copy)."""
        rows = np.arange(self._start, self._start + self._len) % self.settings.max_train_obs
        return self._ring[rows]

    @property
    def variances(self) -> np.ndarray:
        """Tomorrow's variance per asset in return units; NaN for assets never fitted."""
        out: np.ndarray = np.where(self.fitted_, self.variance_ / (SCALE * SCALE), np.nan)
        return out

    def covariance(self, reference: np.ndarray) -> np.ndarray:
        """Tomorrow's covariance: ``reference``'s correlation, these variances (see
        :func:`with_variances`)."""
        return with_variances(reference, self.variances)

    def diagnostics(self, symbols: list[str]) -> dict[str, Any]:
        """The model, its fits, the assets on the reference variance and the failed fits."""
        unfitted = [s for s, f in zip(symbols, self.fitted_, strict=True) if not f]
        errors = {s: e for s, e in zip(symbols, self.fit_errors_, strict=True) if e is not None}
        return {
            "model": self.kind,
            "n_fits": self.n_fits_,
            "fallback": unfitted,
            "fit_errors": errors,
        }

    def state_dict(self) -> dict[str, Any]:
        """Settings, fitted parameters, the running variances and the window's ring."""
        rows = self._ring if self._len == self.settings.max_train_obs else self._ring[: self._len]
        return {
            "kind": self.kind,
            "settings": record_to_dict(self.settings),
            "fitted": self.fitted_.copy(),
            "params": self.params_.copy(),
            "variance": self.variance_.copy(),
            "fit_errors": list(self.fit_errors_),
            "n_fits": self.n_fits_,
            "last_fit": None if self.last_fit_ is None else self.last_fit_.isoformat(),
            "ring": rows.copy(),
            "start": self._start,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> GarchCovariance:
        """Rebuild from :meth:`state_dict` (arrays as ndarrays or nested lists).

        Raises
        ------
        ValueError
            If the saved ring does not fit the saved window.
        """
        params = np.asarray(state["params"], dtype=float).reshape(-1, _N_PARAMS)
        settings = record_from_dict(GarchSettings, state["settings"])
        est = cls(params.shape[0], state["kind"], settings)
        est.fitted_ = np.asarray(state["fitted"], dtype=bool).reshape(-1)
        est.params_ = params
        est.variance_ = np.asarray(state["variance"], dtype=float).reshape(-1)
        est.fit_errors_ = list(state["fit_errors"])
        est.n_fits_ = int(state["n_fits"])
        est.last_fit_ = None if state["last_fit"] is None else pd.Timestamp(state["last_fit"])
        rows = np.asarray(state["ring"], dtype=float).reshape(-1, est.n_assets)
        start = int(state["start"])
        size = est.settings.max_train_obs
        if rows.shape[0] > size or (start and rows.shape[0] != size) or not 0 <= start < size:
            raise ValueError(
                f"a saved GARCH ring of {rows.shape[0]} rows (start {start}) does not fit a "
                f"window of {size}"
            )
        est._ring[: rows.shape[0]] = rows
        est._start, est._len = start, rows.shape[0]
        return est
