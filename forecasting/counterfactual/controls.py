"""The ``controls`` method: the counterfactual as the forecast of the series' model fitted on the
months before the scenario first changes anything, with series the scenario's events do not act
on as regressors (CausalImpact's approach with control series).

What the series shares with its controls (the economy, the season, U.S. policy that acts on both)
moves them together, so the controls' observed months after the change carry that part of the
series' movement into the counterfactual; the univariate ``pre_period`` forecast cannot know it.

**Which series qualify** (:func:`choose_controls`), from the candidates the engine was given
(the store's encounter series for a refit, the served series for the champion):

- counts no encounter the series counts: another region, another component (Border Patrol and
  Field Operations), or the same breakdown with another value (another sector, citizenship or
  family status). A sector and a citizenship overlap (Mexicans in Rio Grande Valley), and a
  total holds its parts, so an event that acts on one acts on the other whatever its scope;
- is outside the scope of every event the scenario removes or scales;
- has no catalog event of its own (one the series is not in scope of) starting or ending from
  the change to the end of the span: that event would move the counterfactual;
- is observed in every month from the fit's first month to the span's last, and averaged at
  least ``MIN_CONTROL_LEVEL`` a month over the last ``LEVEL_MONTHS`` months before the change
  (OHSS rounds to tens; below about 100 a month the rounding is a noise of its own).

Of those, the ``MAX_CONTROLS`` whose 12-month changes of ``log1p`` correlate best (and positively)
with the series' own over the ``RANK_MONTHS`` months before the change are used. The constants
were set before any validation run, not tuned. Only months before the change choose and weigh
the controls; their months after it are the regressors' values the forecast is conditioned on.

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

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from forecasting.counterfactual.pre_period import months_before
from forecasting.counterfactual.result import Paths
from forecasting.errors import ScenarioError
from forecasting.frame import DS, UNIQUE_ID, Y, control_column
from forecasting.interventions import Catalog, Scenario
from forecasting.interventions.scope import DEMOGRAPHIC_DIMENSIONS, SeriesKey, parse_series_key
from forecasting.models.base import Capability

if TYPE_CHECKING:
    from forecasting.counterfactual.engine import CounterfactualEngine

CONTROLS = "controls"
#: Controls in one fit at most; with ~96 months before a change, more would be fitted noise.
MAX_CONTROLS = 5
#: A control's mean monthly count over the ``LEVEL_MONTHS`` months before the change, at least.
MIN_CONTROL_LEVEL = 100.0
LEVEL_MONTHS = 24
#: Months before the change whose 12-month changes rank the candidates.
RANK_MONTHS = 96
#: What each component counts: Border Patrol, Field Operations, or both (``cbp``).
_COMPONENT_PARTS = {"usbp": {"usbp"}, "ofo": {"ofo"}, "cbp": {"usbp", "ofo"}}


def panel_candidates(panel: pd.DataFrame) -> dict[str, pd.Series]:
    """A panel's encounter series as candidate controls: key -> counts on their own months.

    Args:
        panel: long frame with ``unique_id``, ``ds``, ``y`` (the observation store's).
    """
    out = {}
    for key, rows in panel.groupby(UNIQUE_ID, sort=False):
        try:
            parse_series_key(str(key))
        except ValueError:
            continue
        out[str(key)] = pd.Series(
            rows[Y].to_numpy(dtype=float), index=pd.DatetimeIndex(rows[DS]), name=str(key)
        )
    return out


def _dims(key: SeriesKey) -> dict[str, str]:
    # OHSS calls the demographic dimension ``family``, CBP ``demographic``: one breakdown.
    return {("demographic" if d in DEMOGRAPHIC_DIMENSIONS else d): v for d, v in key.dims.items()}


def disjoint(a: SeriesKey, b: SeriesKey) -> bool:
    """Whether two series count no encounter in common.

    Another region, components with no part in common, or one breakdown (sector, citizenship,
    demographic) at two values. Anything else may overlap: a total and its parts, or a sector
    and a citizenship.
    """
    if a.region != b.region or not _COMPONENT_PARTS[a.component] & _COMPONENT_PARTS[b.component]:
        return True
    da, db = _dims(a), _dims(b)
    return any(da[d] != db[d] for d in da.keys() & db.keys())


def choose_controls(
    catalog: Catalog,
    series_key: str,
    scenario: Scenario,
    candidates: Mapping[str, pd.Series],
    y_pre: pd.Series,
    last: pd.Timestamp,
) -> tuple[list[str], dict[str, int]]:
    """The control series of a counterfactual, best first (see the module docstring).

    Args:
        catalog: the catalog the scenario names events of.
        series_key: the series asked about.
        scenario: the changes; its removed and scaled events must not act on a control.
        candidates: series key -> monthly counts (month-start index); other keys (indicators,
            malformed) are not candidates.
        y_pre: the series' counts over the months before the change (the fit window).
        last: the span's last month.

    Returns:
        The chosen keys, and per reason the number of candidates it excluded.
    """
    own = parse_series_key(series_key)
    # The scenario acts on an event's regressor: a grouped event's whole group.
    moved = {
        event.id
        for change in (*scenario.remove, *scenario.scale)
        for event in catalog.members(catalog.resolve(change.event))
    }
    first = y_pre.index[-1] + pd.offsets.MonthBegin(1)
    own_events = {e.id for e in catalog.in_scope(own)}
    months = pd.date_range(y_pre.index[0], last, freq="MS")
    excluded: dict[str, int] = {}
    kept: dict[str, np.ndarray] = {}
    for key, counts in candidates.items():
        if key == series_key:
            continue
        reason = _excluded(catalog, own, key, counts, moved, own_events, months, first)
        if reason is None:
            values = counts.reindex(months).to_numpy(dtype=float)
            if values[len(y_pre) - LEVEL_MONTHS : len(y_pre)].mean() < MIN_CONTROL_LEVEL:
                reason = f"under {MIN_CONTROL_LEVEL:.0f} a month before the change"
            else:
                kept[key] = np.log1p(values[: len(y_pre)])
        if reason is not None:
            excluded[reason] = excluded.get(reason, 0) + 1
    z = np.log1p(y_pre.to_numpy(dtype=float))[-RANK_MONTHS:]
    own_change = z[12:] - z[:-12]
    score = {}
    for key, values in kept.items():
        change = values[-RANK_MONTHS:][12:] - values[-RANK_MONTHS:][:-12]
        if own_change.std() > 0 and change.std() > 0:
            score[key] = float(np.corrcoef(own_change, change)[0, 1])
    ranked = sorted((k for k in score if score[k] > 0), key=lambda k: -score[k])
    if len(kept) > len(ranked):
        excluded["moving against or apart from the series before the change"] = len(kept) - len(
            ranked
        )
    return ranked[:MAX_CONTROLS], excluded


def _excluded(
    catalog: Catalog,
    own: SeriesKey,
    key: str,
    counts: pd.Series,
    moved: set[str],
    own_events: set[str],
    months: pd.DatetimeIndex,
    first: pd.Timestamp,
) -> str | None:
    """Why ``key`` cannot be a control, or None."""
    try:
        other = parse_series_key(key)
    except ValueError:
        return "not an encounter series"
    if not disjoint(own, other):
        return "counts encounters the series counts"
    events = catalog.in_scope(other)
    if any(e.id in moved for e in events):
        return "in the scope of an event the scenario changes"
    for e in events:
        if e.id in own_events:
            continue
        for day in (e.start, e.end):
            if (
                day is not None
                and first <= pd.Timestamp(day).to_period("M").to_timestamp() <= (months[-1])
            ):
                return "an event of its own starts or ends in the span"
    observed = counts.reindex(months)
    if observed.isna().any():
        return "not observed in every month of the fit and the span"
    return None


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
    ) -> tuple[Paths, str]:
        """The controls method's paths and the method that answered (``regressor`` when no
        series qualifies)."""
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
        keys, excluded = choose_controls(
            self.catalog, self.series_key, scenario, self.candidates, y_pre, last
        )
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
