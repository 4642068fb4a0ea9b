"""The Forecaster contract: input checks, fitted state and output assembly shared by every family.

A model family subclasses :class:`Forecaster`, implements ``_fit`` and ``_predict``, and declares
what else it can do as :class:`Capability` values in ``declared`` (``_effects`` / ``_sample_paths``
and the regression protocol of :mod:`forecasting.models._statespace`); callers ask
:meth:`Forecaster.can`, never probe attributes. The public methods here validate once, at the
boundary, so the private ones trust their input:

- ``y`` is a float Series on a gap-free month-start index (freq ``MS``), finite and ``>= 0``;
- ``X`` has the same index and one finite float column per regressor; columns constant over the
  fit window are dropped before ``_fit`` sees them (an event that had not started by the cutoff is
  all zero and carries no information about its effect);
- ``X_df`` holds the learned regressor columns for exactly the ``h`` months after the cutoff.
"""

from __future__ import annotations

import inspect
import numbers
import warnings
from collections.abc import Sequence
from enum import StrEnum
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from forecasting.errors import DataError, EncountersWarning, NotFittedError
from forecasting.frame import (
    DEFAULT_LEVEL,
    DS,
    EFFECT,
    KEPT,
    REGRESSOR,
    STATUS,
    check_level,
    forecast_columns,
    interval_columns,
)

MONTH_START = "MS"
#: BLAS/OpenMP threads per model call. The matrices of one monthly series are tiny, and with the
#: second core busy (another fit, the service) two BLAS threads made a SARIMAX fit ~10x slower;
#: parallelism comes from fitting series in separate processes.
ENGINE_THREADS = 1


def future_index(cutoff: pd.Timestamp, h: int) -> pd.DatetimeIndex:
    """The ``h`` month starts after ``cutoff``, named ``ds``."""
    return pd.date_range(cutoff + pd.offsets.MonthBegin(1), periods=h, freq=MONTH_START, name=DS)


class Capability(StrEnum):
    """What a model family can do beyond a forecast with intervals, declared on the class."""

    #: Uses regressor columns (families without it warn and ignore them).
    REGRESSORS = "regressors"
    #: :meth:`Forecaster.effects`: a percent effect with intervals per regressor.
    EFFECTS = "effects"
    #: :meth:`Forecaster.sample_paths`: simulated future paths.
    SAMPLE_PATHS = "sample_paths"
    #: A regression on ``log1p`` counts with state-space errors
    #: (:class:`~forecasting.models._statespace.LogRegression`): counterfactuals.
    REGRESSION = "regression"
    #: Smoothed level and seasonal states beside the regression: decompositions.
    COMPONENTS = "components"
    #: Chooses among candidate orders by AIC (``aic_``), and refits one alone with
    #: ``clone(orders=(order,))``.
    ORDERS = "orders"
    #: Refits keeping named regressors whatever their ``|t|`` (``clone(keep=...)``).
    KEEP = "keep"
    #: Reads ``control:`` and ``indicator:`` columns (``log1p`` of a measured count) as linear
    #: regressors beside the interventions, with their coefficients' covariance in its paths:
    #: the ``controls`` counterfactual method fits it on the months before a change with other
    #: series as controls.
    CONTROLS = "controls"
    #: Fits one model across several series: built with ``pool=`` (the series and the indicators
    #: they read) and ``series=`` (its own key in the pool), which training supplies.
    POOLED = "pooled"


#: What a family built with ``use_regressors=False`` cannot do, whatever it declares.
NEEDS_REGRESSORS = frozenset(
    {
        Capability.REGRESSORS,
        Capability.EFFECTS,
        Capability.REGRESSION,
        Capability.KEEP,
        Capability.CONTROLS,
    }
)


class Forecaster:
    """One model behind one interface: fit on a monthly series and its regressors, then forecast.

    Subclasses keep ``__init__`` to storing hyperparameters (so :meth:`clone` works), implement
    ``_fit(y, X)`` and ``_predict(h, X_df, level)``, and list in ``declared`` what else they
    implement: ``_effects(level)`` for :attr:`Capability.EFFECTS`, ``_sample_paths(h, X_df, n,
    rng)`` for :attr:`Capability.SAMPLE_PATHS`. The contract tests hold every family to its
    declaration.

    Attributes set by :meth:`fit`:
        cutoff_: the last month of the training series.
        regressors_: the regressor columns ``X_df`` must hold at predict time (empty for families
            that take no regressors).
        dropped_regressors_: the learned regressors the model does not use, with the reason.
    """

    #: What the family can do (see :class:`Capability`).
    declared: ClassVar[frozenset[Capability]] = frozenset()
    #: A hyperparameter of the families that take regressors: ``False`` fits one without them,
    #: so a backtest can decide whether a series gets them. (A class default as well, so that
    #: models pickled before it existed read as using their regressors.)
    use_regressors: bool = True
    #: The shortest training series the family accepts, in months.
    min_obs: ClassVar[int] = 2

    @property
    def capabilities(self) -> frozenset[Capability]:
        """What this model can do: its family's declaration, less what needs the regressors
        when it was built without them."""
        return self.declared if self.use_regressors else self.declared - NEEDS_REGRESSORS

    def can(self, capability: Capability) -> bool:
        """Whether :attr:`capabilities` holds ``capability``."""
        return capability in self.capabilities

    @property
    def takes_regressors(self) -> bool:
        """Whether the family can use regressor columns at all."""
        return Capability.REGRESSORS in self.declared

    @property
    def supports_regressors(self) -> bool:
        """Whether this model uses regressor columns: its family can, and it was not told not to."""
        return self.can(Capability.REGRESSORS)

    @property
    def constant_regressors(self) -> dict[str, float]:
        """The learned regressors that were constant over the fit window, with their value: no
        refit can estimate their effect."""
        self._check_fitted()
        return dict(self._fit_constants_)

    def get_params(self) -> dict[str, Any]:
        """The hyperparameters given at construction, by name."""
        params = inspect.signature(type(self).__init__).parameters.values()
        named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        return {
            p.name: getattr(self, p.name) for p in params if p.kind in named and p.name != "self"
        }

    def clone(self, **changes: Any) -> Self:
        """A new, unfitted model with the same hyperparameters, except ``changes``.

        Raises:
            TypeError: a change names a hyperparameter the family does not have.
        """
        return type(self)(**{**self.get_params(), **changes})

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    # -- public API -------------------------------------------------------------------------

    def fit(self, y: pd.Series, X: pd.DataFrame | None = None) -> Self:
        """Fit the model to one monthly series.

        Args:
            y: counts (``>= 0``, finite) indexed by consecutive month starts (freq ``MS``).
            X: regressors on the same index, one float column per regressor (e.g. intervention
                shapes in [0, 1]); ``None`` or zero columns for none.

        Returns:
            The fitted model itself.

        Raises:
            DataError: ``y`` or ``X`` is malformed; the message names what was expected.
            ValueError: a hyperparameter is not valid.
        """
        # A failed refit must not leave the previous fit looking valid.
        self.__dict__.pop("cutoff_", None)
        if not isinstance(self.use_regressors, bool):
            raise ValueError(f"use_regressors must be true or false; got {self.use_regressors!r}")
        self._check_params()
        y = self._check_y(y)
        X = self._check_X(X, y.index)
        if len(X.columns) and not self.supports_regressors:
            if not self.takes_regressors:
                warnings.warn(
                    f"{type(self).__name__} takes no regressors; ignoring {list(X.columns)}",
                    EncountersWarning,
                    stacklevel=2,
                )
            X = X.iloc[:, :0]
        self.regressors_ = list(X.columns)
        self.dropped_regressors_: dict[str, str] = {}
        self._fit_constants_: dict[str, float] = {}
        for col in X.columns:
            values = X[col].to_numpy()
            if np.all(values == values[0]):
                what = "all zero" if values[0] == 0 else f"constant at {values[0]:g}"
                self.dropped_regressors_[col] = f"{what} over the fit window"
                self._fit_constants_[col] = float(values[0])
        with threadpool_limits(ENGINE_THREADS):
            self._fit(y, X[self._active(list(X.columns))])
        self.cutoff_ = y.index[-1]
        return self

    def predict(
        self, h: int, X_df: pd.DataFrame | None = None, level: Sequence[int] = DEFAULT_LEVEL
    ) -> pd.DataFrame:
        """Forecast the ``h`` months after the cutoff.

        Args:
            h: number of months ahead, ``>= 1``.
            X_df: future regressor values indexed by the ``h`` future month starts, with every
                column in ``regressors_``; extra columns are ignored with a warning.
            level: interval levels in percent.

        Returns:
            Frame indexed by the future month starts (``ds``) with columns ``mean``, then
            ``lo_<l>``, ``hi_<l>`` per level ascending, on the count scale, clipped at zero.
            Bounds are quantiles and ``mean`` is a mean, so for a log-scale model whose
            predictive sd of ``log1p(y)`` exceeds ~2.6 the (skewed) mean can pass ``hi_80``.

        Raises:
            NotFittedError: before :meth:`fit`.
            DataError: ``X_df`` misses a regressor, has the wrong months or non-finite values.
            ValueError: ``h`` or ``level`` is not valid.
        """
        self._check_fitted()
        levels = check_level(level)
        h = self._check_h(h)
        X_df = self._check_X_df(X_df, h)
        with threadpool_limits(ENGINE_THREADS):
            out = self._predict(h, X_df[self._active(self.regressors_)], levels)
        out = out[forecast_columns(levels)].clip(lower=0)
        out.index = future_index(self.cutoff_, h)
        return out

    def effects(self, level: Sequence[int] = DEFAULT_LEVEL) -> pd.DataFrame:
        """The estimated effect of each regressor as a percent change of the series.

        For log-scale models the effect of a column going from 0 to 1 is
        ``100 * (exp(beta) - 1)`` percent; intervals are the same transform of the coefficient's
        Wald interval.

        Args:
            level: interval levels in percent.

        Returns:
            Frame indexed by ``regressor`` (every column in ``regressors_``) with columns
            ``effect``, ``lo_<l>``, ``hi_<l>`` (percent) and ``status`` (``kept`` or why the
            regressor was dropped; dropped regressors have NaN effects).

        Raises:
            NotFittedError: before :meth:`fit`.
            NotImplementedError: the family takes no regressors or cannot attribute change to one.
        """
        if not self.supports_regressors:
            why = "was built with use_regressors=False" if self.takes_regressors else "takes none"
            raise NotImplementedError(
                f"{type(self).__name__} {why}, so it has no regressor effects to report"
            )
        self.require(Capability.EFFECTS, "cannot attribute change to single regressors")
        self._check_fitted()
        levels = check_level(level)
        cols = [EFFECT, *interval_columns(levels)]
        active = self._active(self.regressors_)
        if active:
            with threadpool_limits(ENGINE_THREADS):
                found = self._effects(levels)
        else:
            found = pd.DataFrame(columns=cols, dtype=float)
        out = found.reindex(pd.Index(self.regressors_, name=REGRESSOR))[cols]
        out[STATUS] = [self.dropped_regressors_.get(c, KEPT) for c in self.regressors_]
        return out

    def sample_paths(
        self,
        h: int,
        X_df: pd.DataFrame | None = None,
        n: int = 1000,
        rng: np.random.Generator | int | None = None,
    ) -> np.ndarray:
        """Simulate future sample paths on the count scale.

        Paths include the uncertainty of the regressor coefficients where the family estimates
        them (each path draws its own coefficients), so differences between paths simulated under
        two ``X_df`` with the same ``rng`` seed give the distribution of an intervention's effect.

        Args:
            h: number of months ahead, ``>= 1``.
            X_df: future regressor values, as for :meth:`predict`.
            n: number of paths.
            rng: a numpy Generator or a seed.

        Returns:
            Array of shape (n, h), clipped at zero.

        Raises:
            NotFittedError: before :meth:`fit`.
            NotImplementedError: the family cannot simulate.
        """
        self.require(Capability.SAMPLE_PATHS, "cannot simulate sample paths")
        self._check_fitted()
        h = self._check_h(h)
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"n must be a positive integer number of paths; got {n!r}")
        X_df = self._check_X_df(X_df, h)
        with threadpool_limits(ENGINE_THREADS):
            paths = self._sample_paths(
                h, X_df[self._active(self.regressors_)], int(n), np.random.default_rng(rng)
            )
        return np.clip(paths, 0, None)

    # -- family hooks -----------------------------------------------------------------------

    def _check_params(self) -> None:
        """Validate hyperparameters; runs first in :meth:`fit` (``__init__`` only stores them)."""

    def _fit(self, y: pd.Series, X: pd.DataFrame) -> None:
        raise NotImplementedError

    def _predict(self, h: int, X_df: pd.DataFrame, level: list[int]) -> pd.DataFrame:
        raise NotImplementedError

    def _effects(self, level: list[int]) -> pd.DataFrame:
        raise NotImplementedError(
            f"{type(self).__name__} declares effects but does not compute them"
        )

    def _sample_paths(
        self, h: int, X_df: pd.DataFrame, n: int, rng: np.random.Generator
    ) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} declares sample paths but has none")

    # -- checks -----------------------------------------------------------------------------

    def require(self, capability: Capability, missing: str) -> None:
        """Raise ``NotImplementedError`` with a sentence when the model lacks ``capability``."""
        if not self.can(capability):
            raise NotImplementedError(f"{type(self).__name__} {missing}")

    def _active(self, columns: list[str]) -> list[str]:
        return [c for c in columns if c not in self.dropped_regressors_]

    def _check_fitted(self) -> None:
        if not hasattr(self, "cutoff_"):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(y, X) before using it"
            )

    @staticmethod
    def _check_h(h: int) -> int:
        if isinstance(h, bool) or not isinstance(h, numbers.Integral) or h < 1:
            raise ValueError(f"h must be a positive integer number of months; got {h!r}")
        return int(h)

    def _check_y(self, y: pd.Series) -> pd.Series:
        if not isinstance(y, pd.Series):
            raise DataError(f"y must be a pandas Series; got {type(y).__name__}")
        if not isinstance(y.index, pd.DatetimeIndex):
            raise DataError(
                f"y must be indexed by month starts (DatetimeIndex); got {type(y.index).__name__}"
            )
        if len(y) < self.min_obs:
            raise DataError(
                f"{type(self).__name__} needs at least {self.min_obs} monthly observations; "
                f"got {len(y)}"
            )
        if not y.index.is_month_start.all():
            bad = y.index[~y.index.is_month_start][0]
            raise DataError(f"y must be indexed by month starts; got {bad:%Y-%m-%d}")
        expected = pd.date_range(y.index[0], periods=len(y), freq=MONTH_START)
        if not y.index.equals(expected):
            where = int(np.argmax(y.index != expected))
            raise DataError(
                "y must hold consecutive months without gaps or repeats; expected "
                f"{expected[where]:%Y-%m} at position {where}, got {y.index[where]:%Y-%m}"
            )
        if not pd.api.types.is_numeric_dtype(y):
            raise DataError(f"y must hold numbers; got dtype {y.dtype}")
        values = y.to_numpy(dtype=float)
        if not np.isfinite(values).all():
            bad = y.index[~np.isfinite(values)][0]
            raise DataError(f"y must be finite; got {y[bad]} at {bad:%Y-%m}")
        if (values < 0).any():
            bad = y.index[values < 0][0]
            raise DataError(f"y must hold counts >= 0; got {y[bad]} at {bad:%Y-%m}")
        return pd.Series(values, index=expected.rename(DS), name=y.name)

    @staticmethod
    def _check_numeric_frame(X: pd.DataFrame, name: str) -> pd.DataFrame:
        if X.columns.duplicated().any():
            dups = sorted(set(X.columns[X.columns.duplicated()]))
            raise DataError(f"{name} repeats columns {dups}; each regressor may appear once")
        not_numeric = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
        if not_numeric:
            raise DataError(f"{name} columns {not_numeric} must hold numbers")
        X = X.astype(float)
        bad = [c for c in X.columns if not np.isfinite(X[c].to_numpy()).all()]
        if bad:
            raise DataError(f"{name} columns {bad} hold missing or infinite values")
        return X

    def _check_X(self, X: pd.DataFrame | None, index: pd.DatetimeIndex) -> pd.DataFrame:
        if X is None:
            return pd.DataFrame(index=index)
        if not isinstance(X, pd.DataFrame):
            raise DataError(f"X must be a pandas DataFrame or None; got {type(X).__name__}")
        if not (isinstance(X.index, pd.DatetimeIndex) and X.index.equals(index)):
            raise DataError(
                f"X must be indexed like y ({index[0]:%Y-%m}..{index[-1]:%Y-%m}, "
                f"{len(index)} months); got {_describe_index(X.index)}"
            )
        X = self._check_numeric_frame(X, "X")
        X.index = index
        return X

    def _check_X_df(self, X_df: pd.DataFrame | None, h: int) -> pd.DataFrame:
        index = future_index(self.cutoff_, h)
        if X_df is None:
            X_df = pd.DataFrame(index=index)
        if not isinstance(X_df, pd.DataFrame):
            raise DataError(f"X_df must be a pandas DataFrame or None; got {type(X_df).__name__}")
        missing = [c for c in self.regressors_ if c not in X_df.columns]
        if missing:
            raise DataError(
                f"X_df is missing regressor columns {missing}; fit learned {self.regressors_}"
            )
        if not (isinstance(X_df.index, pd.DatetimeIndex) and X_df.index.equals(index)):
            raise DataError(
                f"X_df must be indexed by the h={h} months {index[0]:%Y-%m}..{index[-1]:%Y-%m}; "
                f"got {_describe_index(X_df.index)}"
            )
        extra = [c for c in X_df.columns if c not in self.regressors_]
        if extra:
            warnings.warn(
                f"X_df columns {extra} were not learned in fit and are ignored; "
                f"fit learned {self.regressors_}",
                EncountersWarning,
                stacklevel=3,
            )
        X_df = self._check_numeric_frame(X_df[self.regressors_], "X_df")
        changed = [c for c, value in self._fit_constants_.items() if (X_df[c] != value).any()]
        if changed:
            warnings.warn(
                f"regressors {changed} were constant over the fit window, so their effect is "
                "unknown and their future values are ignored",
                EncountersWarning,
                stacklevel=3,
            )
        X_df.index = index
        return X_df


def _describe_index(index: pd.Index) -> str:
    if isinstance(index, pd.DatetimeIndex) and len(index):
        return f"{index[0]:%Y-%m}..{index[-1]:%Y-%m}, {len(index)} rows"
    return f"{type(index).__name__} with {len(index)} rows"
