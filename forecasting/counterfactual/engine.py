"""The counterfactual engine of one fitted series: draws, baseline paths, scenarios as design
changes, and the ``regressor`` method (see the package docstring)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from forecasting.backtest import carry_forward
from forecasting.counterfactual.controls import CONTROLS, Controls
from forecasting.counterfactual.pre_period import PrePeriod
from forecasting.counterfactual.refits import OrderAveraging
from forecasting.counterfactual.result import CounterfactualResult, Paths, Span, assemble
from forecasting.errors import DataError, ScenarioError
from forecasting.frame import DEFAULT_LEVEL, DS, MEASURED_PREFIXES, check_level
from forecasting.interventions import (
    AddedRegressor,
    Catalog,
    Scenario,
    apply_scenario,
    month_index,
)
from forecasting.models._statespace import Regression, regression_of
from forecasting.models.base import Forecaster

REGRESSOR = "regressor"
PRE_PERIOD = "pre_period"
METHODS = (REGRESSOR, PRE_PERIOD, CONTROLS)
#: Months after the cutoff an engine simulates by default (the service's longest horizon).
#: Why ``regressor`` answers by default, in every answer it gives as asked.
WHY_REGRESSOR = (
    "method regressor, the default: in the pre-registered validity study (effects injected "
    "into real series at onsets drawn from the calendar, experiments/counterfactual) it has "
    "the smallest error of the methods, controls and pre_period included, on past questions"
)
DEFAULT_HORIZON = 36
#: The span's length when only its start is known (a year, the question analysts ask).
DEFAULT_SPAN_MONTHS = 12
DEFAULT_PATHS = 1000
#: Scenarios whose design change an engine keeps (a service sees a few catalog scenarios often).
CHANGE_CACHE_SIZE = 256


def _month(value: object, name: str) -> pd.Timestamp:
    try:
        return month_index(value, value)[0]
    except ValueError as exc:
        raise DataError(f"{name} must be a month such as '2024-01'; got {value!r}") from exc


def _seed(rng: np.random.Generator | int | None) -> int:
    return int(np.random.default_rng(rng).integers(2**63))


@dataclass(frozen=True)
class Change:
    """A scenario applied to an engine's design: what every request under it starts from.

    ``delta`` is the reference design minus the scenario's over the engine's months (one column
    per reference column), ``added`` the added columns' values, ``changed`` the months where
    either is non-zero.
    """

    added_regressors: tuple[AddedRegressor, ...]
    notes: tuple[str, ...]
    delta: np.ndarray
    added: np.ndarray
    changed: np.ndarray


class CounterfactualEngine(OrderAveraging, PrePeriod, Controls):
    """Counterfactuals of one fitted series, with the heavy parts computed once.

    Build one per fitted model and reuse it: the coefficient draws, the baseline paths over
    ``horizon`` months and the pre-period fits are cached, so :meth:`run` on a catalog scenario
    is array arithmetic (milliseconds). Results are reproducible: the same engine arguments give
    the same paths whatever was asked before.

    Args:
        model: a fitted SARIMAX or UCM forecaster (regression on ``log1p`` counts).
        y: the series it was fitted on: counts on a month-start index ending at its cutoff.
        X: the design matrix it was fitted with (``design_matrix(catalog, series_key, ...)`` over
            ``y``'s months), holding every column of ``model.regressors_``.
        catalog: the catalog ``X`` came from; scenarios name its events.
        series_key: the series, e.g. ``southwest/usbp``.
        n_paths: simulated paths (draws) behind every interval.
        rng: seed or generator; fixes the draws.
        horizon: the furthest month after the cutoff a span may reach, in months.
        average_orders: for a SARIMAX model, the regressor method mixes the paths of every
            candidate SARIMA order, weighted by AIC (see :attr:`order_engines`).
        X_future: the reference design over the ``horizon`` months after the cutoff, with
            ``X``'s columns. Default: each regressor held at its cutoff value, as served
            forecasts hold them. A pre-period fit is given the full series' design instead:
            its months after the cutoff were observed, events as dated.
        candidates: other series' monthly counts by key, from which the ``controls`` method
            chooses its controls (see :mod:`forecasting.counterfactual.controls`); none: that
            method answers with ``regressor`` and says so.

    Raises:
        NotFittedError: the model is not fitted.
        NotImplementedError: the family is not SARIMAX or UCM.
        DataError: ``y`` or ``X`` do not match the model, or a bad ``n_paths`` / ``horizon``.
        ValueError: a malformed series key.
    """

    def __init__(
        self,
        model: Forecaster,
        y: pd.Series,
        X: pd.DataFrame,
        catalog: Catalog,
        series_key: str,
        n_paths: int = DEFAULT_PATHS,
        rng: np.random.Generator | int | None = 0,
        horizon: int = DEFAULT_HORIZON,
        average_orders: bool = True,
        X_future: pd.DataFrame | None = None,
        candidates: Mapping[str, pd.Series] | None = None,
    ):
        self.model = model
        self.candidates: Mapping[str, pd.Series] = candidates or {}
        self.average_orders = average_orders
        self.reg: Regression = regression_of(model).regression()
        for name, value, low in (("n_paths", n_paths, 1), ("horizon", horizon, 1)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
                raise DataError(f"{name} must be an integer >= {low}; got {value!r}")
        self.catalog = catalog
        self.series_key = series_key
        self.n_paths = int(n_paths)
        self.horizon = int(horizon)
        self.seed = _seed(rng)
        self.cutoff: pd.Timestamp = model.cutoff_
        self.y = self._check_y(y)
        self.X = self._check_X(X)
        regressors = catalog.regressors(series_key)
        unknown = [
            c for c in self.X.columns if c not in regressors and not c.startswith(MEASURED_PREFIXES)
        ]
        if unknown:
            raise DataError(
                f"X columns {unknown} are not regressors of {series_key} in the catalog nor "
                "indicators; build X with design_matrix (and indicator_matrix) from the same "
                "catalog"
            )
        held = carry_forward(self.X, self.horizon)
        if X_future is not None:
            if not X_future.index.equals(held.index) or list(X_future.columns) != list(held):
                raise DataError(
                    f"X_future must cover the {self.horizon} months after {self.cutoff:%Y-%m} "
                    f"with X's columns {list(held)}"
                )
            held = X_future.astype(float)
        #: The reference design over the history and the horizon.
        self.X_all = pd.concat([self.X, held])
        self.X_all.index.name = DS
        self.months = self.X_all.index
        self.z = np.log1p(self.y.to_numpy(dtype=float))
        self._pre: dict[pd.Timestamp, CounterfactualEngine] = {}
        self._kept: dict[tuple[str, ...], CounterfactualEngine] = {}
        self._with_controls: dict[tuple, CounterfactualEngine] = {}
        self._changes: dict[Scenario, Change] = {}

    def _check_y(self, y: pd.Series) -> pd.Series:
        if not isinstance(y, pd.Series) or not isinstance(y.index, pd.DatetimeIndex) or y.empty:
            raise DataError("y must be a non-empty pandas Series indexed by month starts")
        if y.index[-1] != self.cutoff:
            raise DataError(
                f"y must end at the model's cutoff {self.cutoff:%Y-%m} (the series it was "
                f"fitted on); got {y.index[0]:%Y-%m}..{y.index[-1]:%Y-%m}"
            )
        if len(y) != self.model.results_.nobs:
            raise DataError(
                f"y must be the series the model was fitted on ({self.model.results_.nobs} "
                f"months to {self.cutoff:%Y-%m}); got {len(y)} months from {y.index[0]:%Y-%m}"
            )
        return y.astype(float)

    def _check_X(self, X: pd.DataFrame) -> pd.DataFrame:
        if not isinstance(X, pd.DataFrame) or not X.index.equals(self.y.index):
            raise DataError(
                f"X must be a DataFrame indexed like y ({self.y.index[0]:%Y-%m}.."
                f"{self.cutoff:%Y-%m}, {len(self.y)} months), the design the model was fitted with"
            )
        missing = [c for c in self.model.regressors_ if c not in X.columns]
        if missing:
            raise DataError(
                f"X is missing regressor columns {missing}; the model was fitted with "
                f"{self.model.regressors_}"
            )
        return X.astype(float)

    # -- cached draws ------------------------------------------------------------------------

    @cached_property
    def beta_draws(self) -> np.ndarray:
        """Coefficient draws, one per path, shape (n_paths, k); shared by past and future."""
        return self.reg.draws(self.n_paths, np.random.default_rng([self.seed, 1]))

    @cached_property
    def baseline(self) -> np.ndarray:
        """Baseline paths of ``log1p(y)`` over the horizon, shape (n_paths, horizon).

        Each path uses its row of :attr:`beta_draws`: a path simulated at the estimated
        coefficients plus ``D (beta_draw - beta_hat)`` (see :mod:`forecasting.models._statespace`).
        """
        X_future = self.model.linearise(self.X_all.iloc[len(self.y) :][list(self.reg.columns)])
        X_future = X_future.to_numpy()
        paths = self.model.simulate_log_paths(
            X_future, self.n_paths, np.random.default_rng([self.seed, 2])
        )
        gap = self.model.forecast_gap(X_future)
        return paths + (self.beta_draws - self.reg.beta) @ gap.T

    def warm(self) -> CounterfactualEngine:
        """Fit the orders and compute the draws and baseline paths now (a service does it at
        load)."""
        for _, engine in self.order_engines:
            _ = engine.baseline
        return self

    def reference_log(self, rows: np.ndarray) -> np.ndarray:
        """``log1p`` reference for positions ``rows`` of :attr:`months`, shape (n, len(rows))."""
        nobs = len(self.y)
        out = np.empty((self.n_paths, len(rows)))
        past = rows < nobs
        out[:, past] = self.z[rows[past]]
        if (~past).any():
            out[:, ~past] = self.baseline[:, rows[~past] - nobs]
        return out

    # -- requests ----------------------------------------------------------------------------

    def run(
        self,
        scenario: Scenario,
        start: object | None = None,
        end: object | None = None,
        method: str = REGRESSOR,
        level: Sequence[int] = DEFAULT_LEVEL,
        controls: Sequence[str] | None = None,
    ) -> CounterfactualResult:
        """The counterfactual of the series under ``scenario`` from ``start`` to ``end``.

        Args:
            scenario: the changes (remove / add / scale).
            start: first month (``"2024-01"`` or any date in it); default: the first month the
                scenario changes the design, or the month after the cutoff when it changes none.
            end: last month; default: ``start`` plus 11 months, within the horizon.
            method: ``regressor``, ``pre_period`` or ``controls`` (see the module docstring).
            level: interval levels in percent.
            controls: with ``controls``, the control series to use instead of the automatic
                choice (each checked; the notes say which the choice would have excluded).

        Returns:
            The counterfactual; see :class:`CounterfactualResult`.

        Raises:
            ScenarioError: an unknown event, an added event borrowing an effect the model did
                not estimate, or a scenario ``pre_period`` cannot answer.
            DataError: a span outside the history and horizon, or end before start.
            ValueError: an unknown method or bad levels.
        """
        levels = check_level(level)
        if method not in METHODS:
            raise ValueError(f"method must be one of {list(METHODS)}; got {method!r}")
        if controls and method != CONTROLS:
            raise ValueError(f"controls are named for method {CONTROLS} only; got {method!r}")
        if not isinstance(scenario, Scenario):
            raise ScenarioError(
                f"scenario must be a Scenario (Scenario.from_json_or_yaml reads one); got "
                f"{type(scenario).__name__}"
            )
        change = self._change(scenario)
        notes = list(change.notes)
        delta, changed = change.delta, change.changed
        rows = self._span(start, end, changed, notes)
        if not changed[rows].any():
            notes.append(
                f"the scenario changes no regressor of {self.series_key} between "
                f"{self.months[rows[0]]:%Y-%m} and {self.months[rows[-1]]:%Y-%m}"
            )
        answered = method
        if method == REGRESSOR or not changed.any():
            paths = self._averaged(scenario, rows, notes)
            if method == REGRESSOR:
                notes.append(WHY_REGRESSOR)
        elif method == CONTROLS:
            paths, answered = self._controls(scenario, delta, changed, rows, notes, controls)
        else:
            paths = self._pre_period(scenario, delta, changed, rows, notes)
        span = Span(self.series_key, self.months[rows], rows < len(self.y))
        return assemble(span, scenario, answered, levels, paths, notes)

    def _span(
        self, start: object | None, end: object | None, changed: np.ndarray, notes: list[str]
    ) -> np.ndarray:
        nobs = len(self.y)
        if start is None:
            first = int(np.argmax(changed)) if changed.any() else nobs
            first = min(first, len(self.months) - 1)
        else:
            first = self._position(_month(start, "start"), "start")
        if end is None:
            last = min(first + DEFAULT_SPAN_MONTHS - 1, len(self.months) - 1)
        else:
            last = self._position(_month(end, "end"), "end")
        if last < first:
            raise DataError(
                f"end {self.months[last]:%Y-%m} is before start {self.months[first]:%Y-%m}"
            )
        return np.arange(first, last + 1)

    def _position(self, month: pd.Timestamp, name: str) -> int:
        if not self.months[0] <= month <= self.months[-1]:
            raise DataError(
                f"{name} {month:%Y-%m} is outside the months this counterfactual covers: "
                f"{self.months[0]:%Y-%m} (first fitted month) to {self.months[-1]:%Y-%m} "
                f"({self.horizon} months after the last observed month)"
            )
        return int(self.months.get_loc(month))

    def _change(self, scenario: Scenario) -> Change:
        """The scenario's design change over every month, cached per scenario (LRU)."""
        cached = self._changes.pop(scenario, None)
        if cached is None:
            design = apply_scenario(self.catalog, scenario, self.series_key, self.X_all)
            linearise = self.model.linearise
            delta = (
                linearise(self.X_all).to_numpy()
                - linearise(design.X[self.X_all.columns]).to_numpy()
            )
            added = design.X[[a.id for a in design.added]].to_numpy()
            changed = (delta != 0).any(axis=1) | (added != 0).any(axis=1)
            for array in (delta, added, changed):
                array.flags.writeable = False
            notes = (*design.notes, *self._starting_later(scenario))
            cached = Change(design.added, notes, delta, added, changed)
            if len(self._changes) >= CHANGE_CACHE_SIZE:
                self._changes.pop(next(iter(self._changes)))
        self._changes[scenario] = cached
        return cached

    def _starting_later(self, scenario: Scenario) -> list[str]:
        """Why removing or scaling an event that starts after the data changes nothing."""
        notes = []
        after = self.cutoff + pd.offsets.MonthBegin(1)
        for change in (*scenario.remove, *scenario.scale):
            starts = [pd.Timestamp(e.start) for e in self.catalog.members(change.event)]
            if min(starts) >= after:
                notes.append(
                    f"{change.event} starts {min(starts):%Y-%m}, after the last observed month "
                    f"({self.cutoff:%Y-%m}): the reference holds each regressor at its value in "
                    f"that month, as forecasts do, so it does not include {change.event}; to ask "
                    "what such an event would do, add it with an effect_pct or like a fitted event"
                )
        return notes

    def _sibling(
        self,
        model: Forecaster,
        y: pd.Series | None = None,
        X: pd.DataFrame | None = None,
        horizon: int | None = None,
    ) -> CounterfactualEngine:
        """An engine of another fit on this engine's data (or on its first months ``y``,
        ``X``), one order, with this engine's design after its cutoff."""
        y = self.y if y is None else y
        horizon = horizon or self.horizon
        return CounterfactualEngine(
            model,
            y,
            self.X if X is None else X,
            self.catalog,
            self.series_key,
            self.n_paths,
            self.seed,
            horizon,
            average_orders=False,
            X_future=self.X_all.iloc[len(y) : len(y) + horizon],
        )

    def _regressor(self, change: Change, rows: np.ndarray, notes: list[str]) -> Paths:
        delta, added = change.delta, change.added
        columns = list(self.X_all.columns)
        active = [columns.index(c) for c in self.reg.columns]
        touched = (delta[rows] != 0).any(axis=0)
        for column, moved in zip(columns, touched, strict=True):
            if moved and column not in self.reg.columns:
                reason = self.model.dropped_regressors_.get(column, "not fitted by the model")
                notes.append(
                    f"{column} has no fitted effect ({reason}); the regressor method gives it "
                    "none (method pre_period estimates one from the months after it)"
                )
        # log1p(cf) = log1p(ref) - (x - x') beta, x on the fit's scale; an added column is
        # x = 0, x' = its values.
        shift = self.beta_draws @ delta[np.ix_(rows, active)].T
        for j, add in enumerate(change.added_regressors):
            shift = shift - self._added_effect(add, added[rows, j])
        reference = self.reference_log(rows)
        return Paths(reference, reference - shift)

    def _added_effect(self, add: AddedRegressor, values: np.ndarray) -> np.ndarray:
        """``log1p`` effect of an added event with ``values`` per month: (1 or n_paths, months).

        A stated ``effect_pct`` acts multiplicatively like a fitted effect: the share ``v`` in
        force multiplies the count by ``1 + effect_pct / 100 * v``.
        """
        if add.effect_pct is not None:
            return np.log1p(add.effect_pct / 100 * values)[None, :]
        column, like, like_regressor = add.id, add.like, add.like_regressor
        if like_regressor not in self.reg.columns:
            reason = self.model.dropped_regressors_.get(
                like_regressor, f"not a regressor of {self.series_key}"
            )
            raise ScenarioError(
                f"added event {column} borrows the effect of {like}, but the fitted model of "
                f"{self.series_key} has no effect for {like_regressor} ({reason}); borrow from "
                f"one of {list(self.reg.columns)} or give effect_pct"
            )
        shape = self.model.linearise(pd.DataFrame({like_regressor: values}))[like_regressor]
        coef = self.beta_draws[:, self.reg.index(like_regressor)]
        return np.multiply.outer(coef, shape.to_numpy())


def counterfactual(
    model: Forecaster,
    y: pd.Series,
    X: pd.DataFrame,
    catalog: Catalog,
    series_key: str,
    scenario: Scenario,
    start: object | None = None,
    end: object | None = None,
    method: str = REGRESSOR,
    level: Sequence[int] = DEFAULT_LEVEL,
    n_paths: int = DEFAULT_PATHS,
    rng: np.random.Generator | int | None = 0,
    candidates: Mapping[str, pd.Series] | None = None,
    controls: Sequence[str] | None = None,
) -> CounterfactualResult:
    """The counterfactual of one series under a scenario; see the module docstring.

    A one-off call; to answer several scenarios on one model build a
    :class:`CounterfactualEngine` once and call its :meth:`~CounterfactualEngine.run`.

    Args:
        model: a fitted SARIMAX or UCM forecaster.
        y: the series it was fitted on (month-start index ending at its cutoff).
        X: the design matrix it was fitted with.
        catalog: the catalog ``X`` came from.
        series_key: the series.
        scenario: the changes.
        start, end: the span (months, past and/or future); defaults as in
            :meth:`CounterfactualEngine.run`.
        method: ``regressor``, ``pre_period`` or ``controls``.
        level: interval levels in percent.
        n_paths: simulated paths behind the intervals.
        rng: seed or generator.
        candidates: other series' counts by key, for the ``controls`` method.
        controls: keys among ``candidates`` to use instead of the automatic choice.

    Returns:
        The per-month frame, totals, summary and notes.
    """
    cutoff = getattr(model, "cutoff_", None)
    horizon = DEFAULT_HORIZON
    if end is not None and cutoff is not None:
        last = _month(end, "end")
        horizon = max(1, (last.year - cutoff.year) * 12 + last.month - cutoff.month)
    engine = CounterfactualEngine(
        model, y, X, catalog, series_key, n_paths, rng, horizon, candidates=candidates
    )
    return engine.run(scenario, start, end, method, level, controls)
