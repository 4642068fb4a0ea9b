"""The served artefact: each series' chosen, fitted model with its calibration and metadata.

A :class:`Bundle` is what one training produces and what the service answers from, so a forecast
never mixes two trainings. :class:`BundleModel` wraps it as an MLflow pyfunc; it lives here, not in
``pipelines`` or ``service``, because the first writes it and the second (or a stock
``mlflow models serve``) loads it, and neither may import the other.
"""

from __future__ import annotations

import pickle
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd

from forecasting.backtest import carry_forward
from forecasting.calibration import Calibrator
from forecasting.counterfactual import CounterfactualEngine
from forecasting.data.store import close_keys
from forecasting.errors import UnknownSeriesError
from forecasting.frame import (
    COUNTERFACTUAL,
    DS,
    MEAN,
    SERIES,
    H,
    check_level,
    forecast_columns,
    hi_col,
    interval_list,
    lo_col,
    months_between,
)
from forecasting.hierarchy import FORECAST, KIND, NOWCAST, Hierarchy, reconcile
from forecasting.interventions import Catalog, Scenario
from forecasting.models import MODELS
from forecasting.models.base import Capability, Forecaster, future_index

BUNDLE_FILE = "bundle.pkl"
#: Bumped when the pickled layout changes, so an old artefact fails with a clear message.
BUNDLE_FORMAT = 2
#: Layouts this version still reads: format 1 had no hierarchy (each series from its own month).
READABLE_FORMATS = (1, 2)
SCENARIO = "scenario"


def is_regression(model: Forecaster) -> bool:
    """Whether a fitted model is a regression on interventions that counterfactuals can use: it
    declares :attr:`~forecasting.models.base.Capability.REGRESSION` and learned regressors."""
    return model.can(Capability.REGRESSION) and bool(model.regressors_)


def future_regressors(model: Forecaster, X: pd.DataFrame | None, h: int) -> pd.DataFrame:
    """A fitted model's regressors over the ``h`` months after its cutoff: the ``X_df`` a served
    forecast uses.

    Each holds its value at the cutoff (:func:`forecasting.backtest.carry_forward`), the rule the
    backtest measured accuracy and calibrated intervals under. An end the catalog knows of is a
    scenario question (``remove`` from a month), not part of the forecast: ending an event lifts
    its coefficient, which after a shock is confounded with whatever else changed then.

    Args:
        model: the fitted model.
        X: the design matrix it was fitted on (its last row is the cutoff), or ``None``.
        h: months ahead.
    """
    if X is None or not model.regressors_:
        return pd.DataFrame(index=future_index(model.cutoff_, h))
    return carry_forward(X.loc[: model.cutoff_, model.regressors_], h)


#: The model a derived series (a parent less its served children) is served by.
DERIVED = "derived"


@dataclass
class SeriesModel:
    """One series' chosen model, fitted on its whole history.

    Attributes:
        key: the series key.
        model_name: registry name of the family (``forecasting.models.MODELS``).
        model: the fitted forecaster.
        calibrator: conformal interval calibration from the model's backtest, or ``None``.
        y: the history the model was fitted on (month-start index).
        X: the intervention design matrix over that history (columns as given to ``fit``).
        metrics: backtest metrics of the chosen model (``mase``, ``relmae``, ``coverage_80`` …).
        run_id: the MLflow child run that trained it, once logged.
        fallback: why the series fell back to a baseline, or ``None``.
        effect_models: fitted regressions on interventions (models with
            :attr:`~forecasting.models.base.Capability.REGRESSION`) of the same training by family,
            best first: what counterfactuals and decompositions use when the chosen model cannot
            attribute change to interventions (a naive model, an ensemble).
    """

    key: str
    model_name: str
    model: Forecaster
    calibrator: Calibrator | None
    y: pd.Series
    X: pd.DataFrame
    metrics: dict[str, float] = field(default_factory=dict)
    run_id: str | None = None
    fallback: str | None = None
    effect_models: dict[str, Forecaster] = field(default_factory=dict)

    def regressions(self) -> dict[str, Forecaster]:
        """The fitted regressions on interventions by family, best first: the chosen model when
        it is one (declares the regression capability and was fitted with regressors), then
        :attr:`effect_models`."""
        models = {self.model_name: self.model} if is_regression(self.model) else {}
        for family, model in getattr(self, "effect_models", {}).items():
            models.setdefault(family, model)
        return models


class Bundle:
    """Every served series' model, the catalog they were trained with, and the training's facts.

    Args:
        models: chosen model per series key.
        catalog: the intervention catalog the design matrices came from (future regressors and
            scenarios are built from the same one).
        level: the interval levels the calibration covers; forecasts accept these only.
        max_h: the longest horizon served after a series' as-of month, in months.
        meta: facts about the training (data fingerprint and newest month, experiment, times).
        hierarchy: the panel's splits and share models (:mod:`forecasting.hierarchy`), or
            ``None`` to serve each series from its own last month.
        upstream: the upstream indicators' counts by key (``controls`` candidates beside the
            served series).
    """

    def __init__(
        self,
        models: dict[str, SeriesModel],
        catalog: Catalog,
        level: Sequence[int],
        max_h: int,
        meta: dict | None = None,
        hierarchy: Hierarchy | None = None,
        upstream: Mapping[str, pd.Series] | None = None,
    ):
        self.models = models
        self.catalog = catalog
        self.level = check_level(level)
        self.max_h = int(max_h)
        self.meta = dict(meta or {})
        self.hierarchy = hierarchy
        self.upstream = dict(upstream or {})
        self._cache: dict[str, pd.DataFrame] = {}
        self._engines: dict[str, CounterfactualEngine] = {}
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        del state["_cache"], state["_lock"], state["_engines"]
        return {**state, "format": BUNDLE_FORMAT}

    def __setstate__(self, state: dict) -> None:
        if state.pop("format", None) not in READABLE_FORMATS:
            raise ValueError(
                f"bundle format is not one of {READABLE_FORMATS}: retrain with this version of "
                "the project"
            )
        state.setdefault("hierarchy", None)
        state.setdefault("upstream", {})
        self.__dict__.update(state)
        self._cache = {}
        self._engines = {}
        self._lock = threading.Lock()

    @property
    def keys(self) -> list[str]:
        """The series with a model of their own."""
        return sorted(self.models)

    @property
    def derived_keys(self) -> list[str]:
        """Series the hierarchy derives (a parent less its served children), served as
        forecasts only."""
        return sorted(self.hierarchy.derived) if self.hierarchy else []

    def history(self, key: str) -> pd.Series:
        """The observed counts a served or derived series' forecast starts from."""
        if key in self.models:
            return self.models[key].y
        if self.hierarchy and key in self.hierarchy.children:
            return self.hierarchy.children[key].y
        raise UnknownSeriesError(key, close_keys(key, [*self.models, *self.derived_keys]))

    def histories(self) -> dict[str, pd.Series]:
        """Every served series' observed counts by key, and the upstream indicators the
        training read: the candidates the ``controls`` counterfactual method chooses from."""
        return {**self.upstream, **{key: entry.y for key, entry in self.models.items()}}

    def as_of(self, key: str) -> pd.Timestamp:
        """The newest month any series of ``key``'s hierarchy has: forecasts start after it."""
        last = self.history(key).index[-1]
        if self.hierarchy is None:
            return last
        ends = {k: self.history(k).index[-1] for k in [*self.models, *self.derived_keys]}
        return self.hierarchy.as_of(key, ends)

    def reconciled(self, key: str) -> bool:
        """Whether ``key``'s served means come from its hierarchy rather than its own model."""
        return self.hierarchy is not None and key in self.hierarchy.reconciled

    def model_label(self, key: str) -> str:
        """The family a series is served by; ``derived`` for a series the hierarchy derives."""
        return self.series_model(key).model_name if key in self.models else DERIVED

    def forecast_record(self, key: str, h: int, level: Sequence[int] | None = None) -> dict:
        """One series' forecast as the API and the CLI answer it (``/v1/forecast``'s JSON without
        the version): its model, as-of month, and rows of nowcasts then ``h`` forecast months."""
        level = self.check_request(h, level)
        frame = self.forecast(key, h, level)
        columns = forecast_columns(level)
        values = frame[columns].to_numpy(dtype=float).round(1)
        rows = []
        for ds, kind, row in zip(frame[DS], frame[KIND], values, strict=True):
            record = {
                DS: f"{ds:%Y-%m-%d}",
                KIND: kind,
                **dict(zip(columns, row.tolist(), strict=True)),
            }
            record["intervals"] = interval_list(record, level)
            rows.append(record)
        return {
            SERIES: key,
            "model": self.model_label(key),
            "level": list(level),
            "last_observed": f"{self.history(key).index[-1]:%Y-%m}",
            "as_of": f"{self.as_of(key):%Y-%m}",
            "rows": rows,
        }

    def series_model(self, key: str) -> SeriesModel:
        """The entry for ``key``; an unknown key raises with close matches."""
        try:
            return self.models[key]
        except KeyError:
            raise UnknownSeriesError(key, close_keys(key, self.models)) from None

    def effect_model(self, key: str, capability: Capability = Capability.REGRESSION) -> Forecaster:
        """The best of ``key``'s regressions on interventions that has ``capability``
        (:attr:`~forecasting.models.base.Capability.COMPONENTS` for decompositions).

        Raises:
            NotImplementedError: the training fitted no such model for the series.
        """
        models = [m for m in self.series_model(key).regressions().values() if m.can(capability)]
        if not models:
            families = sorted(name for name, cls in MODELS.items() if capability in cls.declared)
            raise NotImplementedError(
                f"no model with {capability} ({', '.join(families)}) was trained for {key} with "
                "its intervention regressors; add the family to the experiment's models"
            )
        return models[0]

    def engine(self, key: str, n_paths: int = 1000) -> CounterfactualEngine:
        """The counterfactual engine of ``key`` (built once, then reused)."""
        cached = self._engines.get(key)
        if cached is None:
            entry = self.series_model(key)
            cached = CounterfactualEngine(
                self.effect_model(key),
                entry.y,
                entry.X,
                self.catalog,
                key,
                n_paths=n_paths,
                horizon=months_between(entry.y.index[-1], self.as_of(key)) + self.max_h,
                candidates=self.histories(),
            )
            self._engines[key] = cached
        return cached

    def scenario_forecast(
        self, key: str, h: int, scenario: Scenario, level: Sequence[int] | None = None
    ) -> pd.DataFrame:
        """The months after the series' last observation to ``h`` months after its as-of month
        under ``scenario``: the effect model's counterfactual path and its intervals (the months
        up to the as-of month are ``nowcast`` rows, from the series' own model)."""
        levels = self.check_request(h, level)
        as_of = self.as_of(key)
        cutoff = self.series_model(key).model.cutoff_
        months = future_index(cutoff, months_between(cutoff, as_of) + h)
        result = self.engine(key).run(scenario, months[0], months[-1], level=levels)
        frame = result.frame.reset_index()
        kind = np.where(frame[DS] <= as_of, NOWCAST, FORECAST)
        out = pd.DataFrame({DS: frame[DS], KIND: kind, MEAN: frame[COUNTERFACTUAL]})
        for lv in levels:
            out[lo_col(lv)] = frame[lo_col(lv, COUNTERFACTUAL)]
            out[hi_col(lv)] = frame[hi_col(lv, COUNTERFACTUAL)]
        return out

    def check_request(self, h: int, level: Sequence[int] | None) -> list[int]:
        """Validate a horizon and levels against what the bundle serves; return the levels."""
        if isinstance(h, bool) or not isinstance(h, int) or not 1 <= h <= self.max_h:
            raise ValueError(f"h must be a whole number of months in 1..{self.max_h}; got {h!r}")
        levels = self.level if level is None else check_level(level)
        unknown = sorted(set(levels) - set(self.level))
        if unknown:
            raise ValueError(f"level {unknown} is not calibrated; accepted levels are {self.level}")
        return levels

    def future_X(self, key: str, h: int) -> pd.DataFrame:
        """Regressor values for the ``h`` months after the cutoff: :func:`future_regressors`."""
        entry = self.series_model(key)
        return future_regressors(entry.model, entry.X, h)

    def forecast(self, key: str, h: int, level: Sequence[int] | None = None) -> pd.DataFrame:
        """Calibrated forecast of one series.

        Args:
            key: series key.
            h: months ahead, 1..``max_h``.
            level: interval levels in percent, a subset of :attr:`level` (default: all of them).

        Returns:
            Frame with ``ds`` (month start), ``mean``, ``lo_<l>``, ``hi_<l>`` on the count scale.

        Raises:
            UnknownSeriesError: the key is not served.
            ValueError: ``h`` or ``level`` is outside what the bundle serves.
        """
        levels = self.check_request(h, level)
        full = self._full_forecast(key)
        end = self.as_of(key) + pd.DateOffset(months=h)
        rows = full[(full[KIND] == NOWCAST) | (full[DS] <= end)]
        return rows[[DS, KIND, *forecast_columns(levels)]].reset_index(drop=True)

    def _full_forecast(self, key: str) -> pd.DataFrame:
        # Every series' nowcasts and forecast at the longest horizon and every level, computed
        # once and together (a hierarchy's series depend on each other): what a request asks
        # for is a slice of it, which keeps the hot path a lookup.
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        self.history(key)  # an unknown key raises before the panel is computed
        with self._lock:
            # Another request may have computed it while this one waited for the lock.
            if not self._cache:
                self._cache.update(self._panel())
        return self._cache[key]

    def _own_forecast(self, key: str) -> pd.DataFrame:
        """A served series' calibrated forecast from its own last month to ``max_h`` months
        after its as-of month."""
        entry = self.series_model(key)
        h = months_between(entry.model.cutoff_, self.as_of(key)) + self.max_h
        frame = entry.model.predict(h, self.future_X(key, h), self.level)
        if entry.calibrator is not None:
            frame = entry.calibrator.transform(frame)
        return frame.rename_axis(DS).reset_index()

    def _panel(self) -> dict[str, pd.DataFrame]:
        frames = {key: self._own_forecast(key) for key in self.models}
        if self.hierarchy is None:
            return {
                k: f.assign(**{KIND: FORECAST})[[DS, KIND, *f.columns[1:]]]
                for k, f in frames.items()
            }
        history = {key: entry.y for key, entry in self.models.items()}
        return reconcile(self.hierarchy, frames, history, self.level, self.max_h)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            pickle.dump(self, fh, protocol=pickle.HIGHEST_PROTOCOL)
        return path

    @staticmethod
    def load(path: str | Path) -> Bundle:
        with Path(path).open("rb") as fh:
            bundle = pickle.load(fh)  # noqa: S301 - our own artefact, from our own registry
        if not isinstance(bundle, Bundle):
            raise ValueError(f"{path} does not hold a Bundle; got {type(bundle).__name__}")
        return bundle


class BundleModel(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc over a :class:`Bundle`.

    Input: one row per request with ``series`` (key), ``h`` (months) and an optional ``scenario``
    (JSON text: the forecast under that scenario). Params: ``level`` (list of percents, default
    every calibrated level). Output: ``series, ds, mean, lo_<l>, hi_<l>``.
    """

    def load_context(self, context) -> None:
        self.bundle = Bundle.load(context.artifacts["bundle"])

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None):
        level = (params or {}).get("level")
        frames = []
        for row in model_input.itertuples(index=False):
            key, h = getattr(row, SERIES), int(getattr(row, H))
            scenario = getattr(row, SCENARIO, None)
            if isinstance(scenario, str) and scenario.strip():
                frame = self.bundle.scenario_forecast(
                    key, h, Scenario.from_json_or_yaml(scenario), level
                )
            else:
                frame = self.bundle.forecast(key, h, level)
            frame.insert(0, SERIES, key)
            frames.append(frame)
        out = pd.concat(frames, ignore_index=True)
        out[DS] = out[DS].dt.strftime("%Y-%m-%d")
        return out
