"""Counterfactuals: what if an intervention had not happened, or happens next.

Given a fitted model of one series, a :class:`~forecasting.interventions.Scenario` and a span of
months (past, future or both), the result holds per month:

- ``reference``: what happened (the observation) in observed months, the baseline forecast in
  future months (the model's forecast paths with each regressor held at its value in the last
  observed month, as served forecasts hold them; an end the catalog knows of is a scenario
  question, ``remove`` from a month);
- ``counterfactual``: the series under the scenario;
- ``effect = reference - counterfactual``: for a removal, what the removed event did (negative
  when it lowered encounters); for an addition, minus what the added event would do;
- ``cumulative_effect``: the effect summed from the span's first month.

Each comes with its mean and central intervals, from paths that carry the uncertainty of the
estimated effects. Two methods:

``regressor`` (default)
    Effects fitted over the whole history. Under the model ``log1p(y) = X beta + u`` with errors
    ``u`` that do not depend on the interventions, the counterfactual of month ``t`` is
    ``log1p(y_t) - (x_t - x'_t) beta`` (``x'``: the scenario's design). In an observed month the
    error is the observed one, so the only uncertainty is beta's: each path draws one beta from
    the fit's covariance and keeps it for every month. In a future month the reference is a
    baseline path and the counterfactual the same path shifted by the same draw, so the two are
    paired and the effect's distribution is that of ``(x_t - x'_t) beta``. An added event with
    ``like`` borrows that regressor's draw; one with ``effect_pct`` has a fixed effect. For a
    SARIMAX model each path comes from one of the candidate SARIMA orders, drawn with its AIC
    weight, so the intervals carry the uncertainty of the order too; an event the fit dropped
    for a low ``|t|`` is refitted in, not given an effect of exactly zero.
``pre_period``
    For events too recent to have a fitted effect (CausalImpact's question): a clone of the model
    is fitted on the months before the scenario first changes the design, and its forecast over
    the span is the counterfactual, noise included. Regressors constant before that month are
    not in that fit, so the effect also holds theirs (the notes name them). It answers questions
    about observed months: the change must start by the last observed month, and additions are
    not accepted. A scaling by ``f`` moves the counterfactual a share ``1 - f`` of the way from
    the reference to that forecast on the log scale.

Column naming (frame and JSON rows): ``ds``, ``observed`` (bool), then for each quantity ``q`` in
``reference``, ``counterfactual``, ``effect``, ``cumulative_effect``: ``q`` (mean over paths, on
the count scale), and ``q_lo_<l>``, ``q_hi_<l>`` for each level ``l``, e.g. ``effect_lo_95``.
Observed months have a reference equal to the observation, with bounds equal to it.

The heavy part (coefficient draws, baseline paths, the pre-period fits) is computed once per
:class:`CounterfactualEngine`; a request on a built engine is array arithmetic.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from forecasting.backtest import carry_forward
from forecasting.effects import (
    Regression,
    forecast_gap,
    regression,
    simulate_log_paths,
    summarise,
    summarise_many,
)
from forecasting.errors import DataError, ScenarioError
from forecasting.frame import (
    COUNTERFACTUAL,
    CUMULATIVE_EFFECT,
    DEFAULT_LEVEL,
    DS,
    EFFECT,
    OBSERVED,
    REFERENCE,
    check_level,
    hi_col,
    interval_columns,
    lo_col,
)
from forecasting.interventions import (
    AddedRegressor,
    Catalog,
    Scenario,
    apply_scenario,
    month_index,
)
from forecasting.models.base import Forecaster

REGRESSOR = "regressor"
PRE_PERIOD = "pre_period"
METHODS = (REGRESSOR, PRE_PERIOD)
QUANTITIES = (REFERENCE, COUNTERFACTUAL, EFFECT, CUMULATIVE_EFFECT)
#: Span totals reported beside the rows: sums over the span's months, and the effect as a share.
TOTALS = (REFERENCE, COUNTERFACTUAL, EFFECT, "effect_pct")
#: Months after the cutoff an engine simulates by default (the service's longest horizon).
DEFAULT_HORIZON = 36
#: The span's length when only its start is known (a year, the question analysts ask).
DEFAULT_SPAN_MONTHS = 12
DEFAULT_PATHS = 1000
#: A regressor value below this is treated as "not in force" in notes (decays never reach 0).
MATERIAL = 0.01
#: Scenarios whose design change an engine keeps (a service sees a few catalog scenarios often).
CHANGE_CACHE_SIZE = 256
#: SARIMA orders with a smaller AIC weight are left out of the average.
MIN_ORDER_WEIGHT = 0.01


def counterfactual_columns(level: Sequence[int]) -> list[str]:
    """The frame's columns: ``ds``, ``observed``, then each quantity with its interval columns."""
    levels = check_level(level)
    cols = [DS, OBSERVED]
    for q in QUANTITIES:
        cols += [q, *interval_columns(levels, q)]
    return cols


@dataclass(frozen=True)
class CounterfactualResult:
    """A counterfactual of one series over a span of months.

    Attributes:
        series: the series key.
        scenario: the scenario.
        method: ``regressor`` or ``pre_period``.
        level: interval levels in percent, ascending.
        frame: one row per month of the span, columns :func:`counterfactual_columns`; counts.
        totals: over the whole span: ``reference``, ``counterfactual`` and ``effect`` (sums of
            counts) and ``effect_pct`` (the effect in percent of the counterfactual), each
            with ``_lo_<l>`` / ``_hi_<l>`` bounds.
        summary: one plain-language paragraph with the figures.
        notes: what the computation did that a reader might not expect.
    """

    series: str
    scenario: Scenario
    method: str
    level: tuple[int, ...]
    frame: pd.DataFrame
    totals: dict[str, float]
    summary: str
    notes: tuple[str, ...]

    def to_dict(self) -> dict:
        """JSON-ready: ``series``, ``scenario``, ``method``, ``level``, ``start``, ``end``,
        ``rows`` (the frame's columns; ``ds`` as ``YYYY-MM-DD``, counts rounded to 0.1),
        ``totals``, ``summary``, ``notes``."""
        rows = self.frame.assign(**{DS: self.frame[DS].dt.strftime("%Y-%m-%d")})
        numeric = rows.columns.difference([DS, OBSERVED])
        rows[numeric] = rows[numeric].astype(float).round(1)
        return {
            "series": self.series,
            "scenario": self.scenario.model_dump(mode="json"),
            "method": self.method,
            "level": list(self.level),
            "start": rows[DS].iloc[0][:7],
            "end": rows[DS].iloc[-1][:7],
            "rows": rows.to_dict(orient="records"),
            "totals": {k: round(float(v), 1) for k, v in self.totals.items()},
            "summary": self.summary,
            "notes": list(self.notes),
        }

    def to_json(self, indent: int | None = None) -> str:
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent)


def _month(value: object, name: str) -> pd.Timestamp:
    try:
        return month_index(value, value)[0]
    except ValueError as exc:
        raise DataError(f"{name} must be a month such as '2024-01'; got {value!r}") from exc


def _seed(rng: np.random.Generator | int | None) -> int:
    return int(np.random.default_rng(rng).integers(2**63))


@dataclass(frozen=True)
class _Change:
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


@dataclass(frozen=True)
class _Paths:
    """Per-request arrays: reference and counterfactual on the log1p scale, (n, months)."""

    reference: np.ndarray
    counterfactual: np.ndarray


class CounterfactualEngine:
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
    ):
        self.model = model
        self.average_orders = average_orders
        self.reg: Regression = regression(model)
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
        unknown = [c for c in self.X.columns if c not in regressors]
        if unknown:
            raise DataError(
                f"X columns {unknown} are not regressors of {series_key} in the catalog; build X "
                "with design_matrix from the same catalog"
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
        self._changes: dict[Scenario, _Change] = {}

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
        coefficients plus ``D (beta_draw - beta_hat)`` (see :mod:`forecasting.effects`).
        """
        X_future = self.model.linearise(self.X_all.iloc[len(self.y) :][list(self.reg.columns)])
        X_future = X_future.to_numpy()
        paths = simulate_log_paths(
            self.model, self.reg, X_future, self.n_paths, np.random.default_rng([self.seed, 2])
        )
        gap = forecast_gap(self.model, self.reg, X_future)
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
    ) -> CounterfactualResult:
        """The counterfactual of the series under ``scenario`` from ``start`` to ``end``.

        Args:
            scenario: the changes (remove / add / scale).
            start: first month (``"2024-01"`` or any date in it); default: the first month the
                scenario changes the design, or the month after the cutoff when it changes none.
            end: last month; default: ``start`` plus 11 months, within the horizon.
            method: ``regressor`` or ``pre_period`` (see the module docstring).
            level: interval levels in percent.

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
        if method == REGRESSOR or not changed.any():
            paths = self._averaged(scenario, rows, notes)
        else:
            paths = self._pre_period(scenario, delta, changed, rows, notes)
        return self._result(scenario, method, levels, rows, paths, notes)

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

    def _change(self, scenario: Scenario) -> _Change:
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
            cached = _Change(design.added, notes, delta, added, changed)
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

    def _averaged(self, scenario: Scenario, rows: np.ndarray, notes: list[str]) -> _Paths:
        """The regressor method's paths, each drawn from one of :attr:`order_engines`."""
        members = self.order_engines
        if len(members) == 1:
            return self._fitted_paths(scenario, rows, notes)
        weights = np.array([w for w, _ in members])
        pick = np.random.default_rng([self.seed, 3]).choice(len(members), self.n_paths, p=weights)
        reference = np.empty((self.n_paths, len(rows)))
        counterfactual = np.empty_like(reference)
        for j, (_, engine) in enumerate(members):
            said: list[str] = []
            paths = engine._fitted_paths(scenario, rows, said)
            notes += [n for n in said if n not in notes]
            reference[pick == j] = paths.reference[pick == j]
            counterfactual[pick == j] = paths.counterfactual[pick == j]
        heaviest = sorted(members, key=lambda member: -member[0])
        described = ", ".join(
            f"{e.model.order_}{e.model.seasonal_order_} {w:.0%}" for w, e in heaviest
        )
        notes.append(f"effects averaged over SARIMA orders weighted by AIC: {described}")
        return _Paths(reference, counterfactual)

    def _fitted_paths(self, scenario: Scenario, rows: np.ndarray, notes: list[str]) -> _Paths:
        """This fit's regressor-method paths, refitting first to keep a dropped event asked
        about: dropped, it would claim an effect of exactly zero with no uncertainty."""
        change = self._change(scenario)
        unfitted = self._unfitted(change, rows)
        if not unfitted:
            return self._regressor(change, rows, notes)
        reasons = "; ".join(self.model.dropped_regressors_[c] for c in unfitted)
        note = (
            f"a fit of {self.series_key} had dropped {', '.join(unfitted)} ({reasons}); "
            "refitted keeping it, so the effect comes with its estimate's uncertainty"
        )
        if note not in notes:
            notes.append(note)
        return self.kept_engine(unfitted)._fitted_paths(scenario, rows, notes)

    def _unfitted(self, change: _Change, rows: np.ndarray) -> tuple[str, ...]:
        """Regressors the scenario asks about in ``rows`` that the fit dropped for a low ``|t|``.

        Columns constant over the fit window are not among them: no refit can estimate those.
        """
        touched = (change.delta[rows] != 0).any(axis=0)
        asked = {c for c, moved in zip(self.X_all.columns, touched, strict=True) if moved}
        asked |= {a.like_regressor for a in change.added_regressors if a.like_regressor}
        constant = getattr(self.model, "_fit_constants_", {})
        return tuple(
            c
            for c in self.X_all.columns
            if c in asked and c in self.model.dropped_regressors_ and c not in constant
        )

    def kept_engine(self, columns: tuple[str, ...]) -> CounterfactualEngine:
        """The engine of a clone of the model refitted keeping ``columns`` (cached per set)."""
        if columns not in self._kept:
            keep = self.model.get_params().get("keep")
            if keep is None:
                raise ScenarioError(
                    f"{type(self.model).__name__} dropped {list(columns)} and cannot refit "
                    "keeping them; use method pre_period"
                )
            model = self.model.clone(keep=tuple(dict.fromkeys([*keep, *columns])))
            self._kept[columns] = self._sibling(model.fit(self.y, self.X))
        return self._kept[columns]

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

    @cached_property
    def order_engines(self) -> tuple[tuple[float, CounterfactualEngine], ...]:
        """(AIC weight, engine) per candidate order of a SARIMAX model, in the model's order of
        candidates; ``((1.0, self),)`` for one order or another family.

        The orders' AICs are close on these series (the chosen one had a median weight of 0.41
        in ``experiments/counterfactual``), and their effect estimates differ: an interval from
        the chosen order alone treats the choice as certain. Weights are ``exp(-dAIC / 2)``;
        orders under ``MIN_ORDER_WEIGHT`` are left out. Each other order is the model refitted
        with that order alone.
        """
        aic = getattr(self.model, "aic_", None) if self.average_orders else None
        if not aic:
            return ((1.0, self),)
        best = min(aic.values())
        raw = {o: np.exp(-(a - best) / 2) for o, a in aic.items() if np.isfinite(a)}
        kept = {o: w for o, w in raw.items() if w >= MIN_ORDER_WEIGHT * sum(raw.values())}
        if len(kept) < 2:
            return ((1.0, self),)
        chosen = (self.model.order_, self.model.seasonal_order_)
        total = sum(kept.values())
        members = []
        for order, weight in kept.items():
            engine = self
            if order != chosen:
                engine = self._sibling(self.model.clone(orders=(order,)).fit(self.y, self.X))
            members.append((weight / total, engine))
        return tuple(members)

    def _regressor(self, change: _Change, rows: np.ndarray, notes: list[str]) -> _Paths:
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
        return _Paths(reference, reference - shift)

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

    def pre_period_engine(self, first_changed: pd.Timestamp) -> CounterfactualEngine:
        """The engine of a clone of the model fitted on the months before ``first_changed``.

        Fitted once per month and cached; its horizon reaches this engine's last month.

        Raises:
            DataError: too few months before ``first_changed`` for the model family.
        """
        if first_changed not in self._pre:
            y_pre = self.y.loc[: first_changed - pd.offsets.MonthBegin(1)]
            if len(y_pre) < self.model.min_obs:
                raise DataError(
                    f"pre_period needs at least {self.model.min_obs} observed months before "
                    f"{first_changed:%Y-%m} to fit {type(self.model).__name__}; the series "
                    f"starts {self.y.index[0]:%Y-%m}"
                )
            X_pre = self.X.loc[y_pre.index]
            model = self.model.clone().fit(y_pre, X_pre)
            horizon = len(self.months) - len(y_pre)
            self._pre[first_changed] = self._sibling(model, y_pre, X_pre, horizon)
        return self._pre[first_changed]

    def _pre_period(
        self,
        scenario: Scenario,
        delta: np.ndarray,
        changed: np.ndarray,
        rows: np.ndarray,
        notes: list[str],
    ) -> _Paths:
        if scenario.add:
            raise ScenarioError(
                "method pre_period estimates an event's effect from the months after it; an "
                "added event has none. Use method regressor (with like or effect_pct)"
            )
        t0 = int(np.argmax(changed))
        first = self.months[t0]
        if t0 >= len(self.y):
            raise ScenarioError(
                f"method pre_period needs observed months after the change, but the scenario "
                f"first changes {self.series_key} in {first:%Y-%m}, after the last observed "
                f"month {self.cutoff:%Y-%m}; use method regressor"
            )
        pre = self.pre_period_engine(first)
        columns = list(self.X_all.columns)
        moved = (delta != 0).any(axis=0)
        ref_x = self.X_all.to_numpy()
        # The share of each changed regressor removed per month; 1 for a removal, 1 - f for a
        # scaling, 0 where the scenario leaves the month alone.
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(ref_x[:, moved] != 0, delta[:, moved] / ref_x[:, moved], 0.0)
        pick = np.argmax(np.abs(share), axis=1)
        phi = share[np.arange(len(share)), pick] if moved.any() else np.zeros(len(share))
        # The pre-period model's paths with the changed regressors at zero from t0 on: its
        # baseline shifted by (x - 0) beta for those columns (non-zero only when they were
        # already in force before t0 and so are in that fit).
        removed = np.zeros_like(ref_x)
        removed[t0:, moved] = ref_x[t0:, moved]
        late = rows[rows >= t0]
        removed = pre.model.linearise(pd.DataFrame(removed[late], columns=columns))
        z0 = pre.reference_log(late - t0 + len(pre.y))
        z0 -= pre.beta_draws @ removed[list(pre.reg.columns)].to_numpy().T
        reference = self.reference_log(rows)
        counterfactual = reference.copy()
        k = len(rows) - len(late)
        counterfactual[:, k:] = reference[:, k:] - phi[late] * (reference[:, k:] - z0)
        self._pre_period_notes(first, pre, moved, rows, notes)
        return _Paths(reference, counterfactual)

    def _pre_period_notes(
        self,
        first: pd.Timestamp,
        pre: CounterfactualEngine,
        moved: np.ndarray,
        rows: np.ndarray,
        notes: list[str],
    ) -> None:
        notes.append(
            f"pre_period: the counterfactual is the forecast of {type(self.model).__name__} "
            f"fitted on {pre.y.index[0]:%Y-%m}..{pre.cutoff:%Y-%m}, the months before the "
            "scenario's first change"
        )
        span = self.X_all.iloc[rows]
        missing = [
            f"{c} ({pre.model.dropped_regressors_.get(c, 'not fitted')})"
            for c, is_moved in zip(self.X_all.columns, moved, strict=True)
            if not is_moved and c not in pre.reg.columns and span[c].abs().max() >= MATERIAL
        ]
        if missing:
            notes.append(
                f"regressors in force in the span without an effect in the pre-period fit: "
                f"{'; '.join(missing)}; their effects are counted in the effect"
            )
        if rows[-1] >= len(self.y):
            notes.append(
                "in future months the reference (the full model's forecast) and the "
                "counterfactual (the pre-period model's) are simulated by two models, so the "
                "effect's interval holds the noise of both"
            )

    # -- output ------------------------------------------------------------------------------

    def _result(
        self,
        scenario: Scenario,
        method: str,
        levels: list[int],
        rows: np.ndarray,
        paths: _Paths,
        notes: list[str],
    ) -> CounterfactualResult:
        reference = np.clip(np.expm1(paths.reference), 0, None)
        counterfactual = np.clip(np.expm1(paths.counterfactual), 0, None)
        effect = reference - counterfactual
        cumulative = np.cumsum(effect, axis=1)
        months = self.months[rows]
        stats = summarise_many(
            {
                REFERENCE: reference,
                COUNTERFACTUAL: counterfactual,
                EFFECT: effect,
                CUMULATIVE_EFFECT: cumulative,
            },
            levels,
        )
        # One float block, then the two leading columns: a dict of 40 arrays costs ~2 ms more.
        frame = pd.DataFrame(np.column_stack(list(stats.values())), columns=list(stats))
        frame.insert(0, OBSERVED, rows < len(self.y))
        frame.insert(0, DS, months)
        cf_total = counterfactual.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            pct = np.where(cf_total > 0, 100 * cumulative[:, -1] / cf_total, np.nan)
        # A share of nothing is undefined: those draws are left out of the percent's interval.
        pct = pct[np.isfinite(pct)] if np.isfinite(pct).any() else np.zeros(1)
        sums = summarise_many(
            {
                REFERENCE: reference.sum(axis=1),
                COUNTERFACTUAL: cf_total,
                EFFECT: cumulative[:, -1],
            },
            levels,
        )
        totals = {k: float(v) for k, v in sums.items()}
        totals.update({k: float(v) for k, v in summarise(pct, levels, TOTALS[3]).items()})
        summary = _summary(
            self.series_key,
            scenario,
            method,
            months,
            bool(rows[-1] < len(self.y)),
            bool(rows[0] < len(self.y)),
            totals,
            max(levels),
        )
        return CounterfactualResult(
            self.series_key,
            scenario,
            method,
            tuple(levels),
            frame,
            totals,
            summary,
            tuple(notes),
        )


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
        method: ``regressor`` or ``pre_period``.
        level: interval levels in percent.
        n_paths: simulated paths behind the intervals.
        rng: seed or generator.

    Returns:
        The per-month frame, totals, summary and notes.
    """
    cutoff = getattr(model, "cutoff_", None)
    horizon = DEFAULT_HORIZON
    if end is not None and cutoff is not None:
        last = _month(end, "end")
        horizon = max(1, (last.year - cutoff.year) * 12 + last.month - cutoff.month)
    engine = CounterfactualEngine(model, y, X, catalog, series_key, n_paths, rng, horizon)
    return engine.run(scenario, start, end, method, level)


# -- summary -----------------------------------------------------------------------------------


def _count(value: float) -> str:
    value = float(np.round(value)) or 0.0  # no "−0"
    return f"{value:,.0f}".replace("-", "−")


def _signed(value: float) -> str:
    return ("+" if value > 0 else "") + _count(value)


def _window(change: object) -> str:
    start, end = getattr(change, "start", None), getattr(change, "end", None)
    if start is None and end is None:
        return ""
    return f" ({f'{start:%Y-%m}' if start else 'start'} to {f'{end:%Y-%m}' if end else 'end'})"


def describe_scenario(scenario: Scenario) -> str:
    """A short phrase: ``without mx_enforcement_2023_12 (2024-01 to end)``, ``with …``."""
    parts = [f"without {r.event}{_window(r)}" for r in scenario.remove]
    parts += [f"with {s.event} at {s.factor:g}× its intensity{_window(s)}" for s in scenario.scale]
    for a in scenario.add:
        effect = f"{a.effect_pct:+g} %" if a.effect_pct is not None else f"the effect of {a.like}"
        parts.append(f"with {a.id} ({a.shape.label} from {a.start}, {effect})")
    return "; ".join(parts) or "no change"


def _summary(
    key: str,
    scenario: Scenario,
    method: str,
    months: pd.DatetimeIndex,
    all_observed: bool,
    any_observed: bool,
    totals: dict[str, float],
    level: int,
) -> str:
    what = "observed" if all_observed else "observed and forecast" if any_observed else "forecast"

    def interval(name: str, fmt=_count) -> str:
        return (
            f"{level} % interval {fmt(totals[lo_col(level, name)])} to "
            f"{fmt(totals[hi_col(level, name)])}"
        )

    def pct(value: float) -> str:
        return f"{value:+.0f} %".replace("-", "−")

    span = f"{months[0]:%B %Y}" + (f" to {months[-1]:%B %Y}" if len(months) > 1 else "")
    ref = f"{_count(totals[REFERENCE])} encounters ({what}"
    ref += ")" if all_observed else f"; {interval(REFERENCE)})"
    return (
        f"{key}, {span}, {describe_scenario(scenario)} (method {method}): the reference is "
        f"{ref}; the counterfactual {_count(totals[COUNTERFACTUAL])} "
        f"({interval(COUNTERFACTUAL)}). The effect (reference − counterfactual) is "
        f"{_signed(totals[EFFECT])} encounters ({interval(EFFECT, _signed)}), "
        f"{pct(totals['effect_pct'])} of the counterfactual ({interval('effect_pct', pct)})."
    )
