"""The ``controls`` method: the counterfactual as the forecast of the series' model fitted on the
months before the scenario first changes anything, with series the scenario's events do not act
on as regressors (CausalImpact's approach with control series).

What the series shares with its controls (the economy, the season, U.S. policy that acts on both)
moves them together, so the controls' observed months after the change carry that part of the
series' movement into the counterfactual; the univariate ``pre_period`` forecast cannot know it.

**Which series qualify** as controls, and which are chosen, is
:mod:`forecasting.counterfactual.donors`: encounter series outside the scope of the events the
scenario changes, else the flows counted upstream of Mexico; each observed through the span and
within its range before the change, ranked by how they moved with the series before it.

**Model.** A clone of the series' model (its family, orders and settings) refitted on the months
before the change with the intervention regressors in force then and one column
``control:<key>`` = ``log1p`` of each control's count; the family reads them linearly
(:attr:`~forecasting.models.base.Capability.CONTROLS`) and may drop one whose ``|t|`` is below
its ``min_t`` as it does events. Its paths over the span draw the coefficients, the controls'
weights among them, from their covariance and simulate the error process, so the interval holds
the uncertainty of the weights and of the forecast. The weights are elasticities: a control 1 %
higher moves the counterfactual by that many percent; the notes list them with their standard
errors.

It answers past questions: months the controls were observed in. For months after the controls'
last observation there is nothing to condition on, and the method says so; a future scenario is
answered by ``regressor``. Where no series qualifies, the answer comes from ``regressor`` and its
notes say why.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from forecasting.counterfactual.donors import ControlQuestion, observed_from
from forecasting.counterfactual.pre_period import months_before
from forecasting.counterfactual.result import Paths
from forecasting.errors import ScenarioError
from forecasting.frame import control_column
from forecasting.interventions import Scenario
from forecasting.models.base import Capability

if TYPE_CHECKING:
    from forecasting.counterfactual.engine import CounterfactualEngine

CONTROLS = "controls"


class Controls:
    """The :class:`~forecasting.counterfactual.CounterfactualEngine` methods of ``controls``."""

    def controls_engine(
        self, first: pd.Timestamp, keys: tuple[str, ...], last: pd.Timestamp
    ) -> CounterfactualEngine:
        """The engine of a clone of the model fitted on the months before ``first`` with
        ``keys`` as controls; its horizon reaches ``last``. Cached per arguments.

        Raises:
            DataError: too few months before ``first`` for the model family.
        """
        cache_key = (first, keys, last)
        if cache_key not in self._with_controls:
            from forecasting.counterfactual.engine import CounterfactualEngine

            y_pre = self._months_before(first)
            months = pd.date_range(y_pre.index[0], last, freq="MS", name=self.X_all.index.name)
            # Fitted on the months every control was observed in.
            start = max(observed_from(self.candidates[k], months) for k in keys)
            y_pre, months = y_pre.iloc[start:], months[start:]
            levels = pd.DataFrame(
                {control_column(k): np.log1p(self.candidates[k].reindex(months)) for k in keys},
                index=months,
            )
            design = self.X_all.loc[months].join(levels)
            X_pre = design.loc[y_pre.index]
            model = self.model.clone().fit(y_pre, X_pre)
            self._with_controls[cache_key] = CounterfactualEngine(
                model,
                y_pre,
                X_pre,
                self.catalog,
                self.series_key,
                self.n_paths,
                self.seed,
                len(months) - len(y_pre),
                average_orders=False,
                X_future=design.iloc[len(y_pre) :],
            )
        return self._with_controls[cache_key]

    def _months_before(self, first: pd.Timestamp) -> pd.Series:
        """The series before ``first``: the window the controls are chosen and fitted on."""
        return months_before(
            self.y, first, self.model.min_obs, "controls", type(self.model).__name__
        )

    def _controls(
        self,
        scenario: Scenario,
        delta: np.ndarray,
        changed: np.ndarray,
        rows: np.ndarray,
        notes: list[str],
        named: Sequence[str] | None = None,
    ) -> tuple[Paths, str]:
        """The controls method's paths and the method that answered (``regressor`` when no
        series qualifies); ``named``: the request's controls instead of the automatic choice."""
        self.model.require(
            Capability.CONTROLS, "cannot read control series as regressors; use method regressor"
        )
        if rows[-1] >= len(self.y):
            raise ScenarioError(
                f"method controls answers months the series and its controls were observed "
                f"in; the span ends {self.months[rows[-1]]:%Y-%m}, after the last observed "
                f"month {self.cutoff:%Y-%m}: for later months use method regressor, whose "
                "reference is the model's forecast"
            )
        t0, first = self._first_change(scenario, changed, CONTROLS)
        last = self.months[rows[-1]]
        y_pre = self._months_before(first)
        question = ControlQuestion(
            self.catalog, self.series_key, scenario, self.candidates, y_pre, last
        )
        if named:
            keys, warnings = question.named(named)
            notes.extend(warnings)
            excluded = {}
        else:
            keys, excluded = question.choose()
        if not keys:
            why = "; ".join(f"{reason}: {n}" for reason, n in excluded.items()) or (
                "no candidate series were given"
            )
            notes.append(
                f"controls: no series qualifies as a control of {self.series_key} from "
                f"{first:%Y-%m} to {last:%Y-%m} ({why}); answered by method regressor instead"
            )
            return self._averaged(scenario, rows, notes), "regressor"
        engine = self.controls_engine(first, tuple(keys), last)
        paths = self._forecast_away(engine, delta, rows, t0)
        notes.append(self._weights_note(engine, keys))
        missing = self._unfitted_in_span(engine, (delta != 0).any(axis=0), rows)
        if missing:
            notes.append(
                f"regressors in force in the span without an effect in the fit before the "
                f"change: {'; '.join(missing)}; what they did to the controls is in the "
                "counterfactual, the rest is counted in the effect"
            )
        return paths, CONTROLS

    def _weights_note(self, engine: CounterfactualEngine, keys: list[str]) -> str:
        reg = engine.reg
        se = np.sqrt(np.diag(reg.cov)) if len(reg.columns) else np.zeros(0)
        parts = []
        for key in keys:
            column = control_column(key)
            if column in reg.columns:
                j = reg.index(column)
                parts.append(f"{key} {reg.beta[j]:+.2f} (s.e. {se[j]:.2f})")
            else:
                reason = engine.model.dropped_regressors_.get(column, "not fitted")
                parts.append(f"{key} dropped ({reason})")
        return (
            f"controls: the counterfactual is the forecast of {type(self.model).__name__} fitted "
            f"on {engine.y.index[0]:%Y-%m}..{engine.cutoff:%Y-%m} with control series as "
            f"regressors; weights (elasticities of log1p counts): {'; '.join(parts)}"
        )
