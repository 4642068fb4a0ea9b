"""Which series may serve as the controls of a counterfactual: the donor pool of the
``controls`` method (:mod:`forecasting.counterfactual.controls`).

**Which series qualify** (:meth:`ControlQuestion.choose`), from the candidates the engine was given
(the store's encounter series and upstream indicators for a refit; the served series and the
upstream indicators the training read for the champion). An encounter series qualifies if it

- counts no encounter the series counts: another region, another component (Border Patrol and
  Field Operations), or the same breakdown with another value (another sector, citizenship or
  family status). A sector and a citizenship overlap (Mexicans in Rio Grande Valley), and a
  total holds its parts, so an event that acts on one acts on the other whatever its scope;
- is outside the scope of every event the scenario removes or scales;
- has no catalog event of its own (one the series is not in scope of) starting or ending from
  the change to the end of the span: that event would move the counterfactual.

An upstream indicator (Darién transits, Honduras's irregular entries: :data:`UPSTREAM_SOURCES`)
qualifies if every event the scenario changes is a U.S., Mexican or bilateral action
(:data:`DOWNSTREAM_ACTORS`): those act on migrants in or north of Mexico, after they were
counted upstream. That is an assumption the answer rests on: an action that deters people
before they set out moves its upstream controls too, and the effect comes out smaller.
Mexico's own counts (presentations, expulsions) and Guatemala's returns are the enforcement
itself, never controls. Every control, of either kind,

- is observed in every month of the span and, before the change, in every month of the series'
  fit (an encounter series), or in at least ``MIN_FIT_MONTHS`` months without a gap (an upstream
  indicator: Darién's monthly figures start in 2020), the fit then running over the months all
  the chosen indicators were observed in;
- averaged at least ``MIN_CONTROL_LEVEL`` a month over the last ``LEVEL_MONTHS`` months before
  the change (OHSS rounds to tens; below about 100 a month the rounding is a noise of its own);
- stays in the span within the range its counts took in the months the weights are fitted on.
  The weights are elasticities estimated on that range; a control that leaves it makes the
  counterfactual an extrapolation of them. The pre-registered validity study met one that did:
  Brazilians and Ecuadorians rising tenfold in 2019 over their 2011-2019 range gave
  Nicaraguans a counterfactual of 5.6e16 encounters.

Of those, the ``MAX_CONTROLS`` whose 12-month changes of ``log1p`` correlate best (and positively)
with the series' own over the ``RANK_MONTHS`` months before the change are used: encounter series
if any qualifies (the validity study measured those), else upstream indicators. The constants
were set before any validation run, not tuned; the range rule, the upstream indicators and
``MIN_FIT_MONTHS`` came after the pre-registered run, which is rerun under them beside its first
figures (``experiments/counterfactual/results-preregistered*.md``). Only months before the
change rank and weigh the controls; their months after it are the regressors' values the
forecast is conditioned on, and are read only to check that they stay in range.

A request may name its own controls instead (:meth:`ControlQuestion.named`): each must be a
candidate observed as above, and the answer's notes say which the automatic choice would have
excluded, and why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from forecasting.data.indicators import is_indicator
from forecasting.errors import ScenarioError
from forecasting.frame import DS, UNIQUE_ID, Y
from forecasting.interventions import Catalog, Scenario
from forecasting.interventions.scope import DEMOGRAPHIC_DIMENSIONS, SeriesKey, parse_series_key

#: Controls in one fit at most; with ~96 months before a change, more would be fitted noise.
MAX_CONTROLS = 5
#: A control's mean monthly count over the ``LEVEL_MONTHS`` months before the change, at least.
MIN_CONTROL_LEVEL = 100.0
LEVEL_MONTHS = 24
#: Months before the change whose 12-month changes rank the candidates.
RANK_MONTHS = 96
#: A control's fewest observed months before the change: three seasonal cycles, what the
#: default SARIMAX needs to fit at all.
MIN_FIT_MONTHS = 36
#: Indicators counted before migrants reach Mexico: Darién transits and Honduras's irregular
#: entries.
UPSTREAM_SOURCES = ("panama/darien/", "honduras/inm/")
#: Actors of events that act at or north of Mexico's southern border: an event of theirs acts
#: downstream of the upstream indicators. An ``other`` event (a pandemic, a visa rule of a third
#: country) may act anywhere.
DOWNSTREAM_ACTORS = frozenset({"US", "MX", "bilateral"})
#: What each component counts: Border Patrol, Field Operations, or both (``cbp``).
_COMPONENT_PARTS = {"usbp": {"usbp"}, "ofo": {"ofo"}, "cbp": {"usbp", "ofo"}}


def panel_candidates(panel: pd.DataFrame) -> dict[str, pd.Series]:
    """A panel's candidate controls: key -> counts on their own months. Its encounter series and
    the upstream indicators (:data:`UPSTREAM_SOURCES`).

    Args:
        panel: long frame with ``unique_id``, ``ds``, ``y`` (the observation store's).
    """
    out = {}
    for key, rows in panel.groupby(UNIQUE_ID, sort=False):
        if not (upstream(str(key)) or _encounter_key(str(key))):
            continue
        out[str(key)] = pd.Series(
            rows[Y].to_numpy(dtype=float), index=pd.DatetimeIndex(rows[DS]), name=str(key)
        )
    return out


def upstream_candidates(panel: pd.DataFrame) -> dict[str, pd.Series]:
    """The upstream indicators among :func:`panel_candidates`."""
    return {k: v for k, v in panel_candidates(panel).items() if upstream(k)}


def upstream(key: str) -> bool:
    """Whether ``key`` is an indicator of flows before they reach Mexico."""
    return is_indicator(key) and key.startswith(UPSTREAM_SOURCES)


def _encounter_key(key: str) -> SeriesKey | None:
    try:
        return parse_series_key(key)
    except ValueError:
        return None


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


@dataclass(frozen=True)
class ControlQuestion:
    """One counterfactual's donor pool: which candidates may be its controls.

    Args:
        catalog: the catalog the scenario names events of.
        series_key: the series asked about.
        scenario: the changes; its removed and scaled events must not act on a control.
        candidates: series key -> monthly counts (month-start index); keys that are neither
            encounter series nor upstream indicators are not candidates.
        y_pre: the series' counts over the months before the change (the fit window).
        last: the span's last month.
    """

    catalog: Catalog
    series_key: str
    scenario: Scenario
    candidates: Mapping[str, pd.Series]
    y_pre: pd.Series
    last: pd.Timestamp

    @cached_property
    def own(self) -> SeriesKey:
        return parse_series_key(self.series_key)

    @cached_property
    def moved(self) -> tuple:
        """The events the scenario acts on: a grouped event's whole group."""
        return tuple(
            event
            for change in (*self.scenario.remove, *self.scenario.scale)
            for event in self.catalog.members(self.catalog.resolve(change.event))
        )

    @cached_property
    def moved_ids(self) -> frozenset[str]:
        return frozenset(e.id for e in self.moved)

    @cached_property
    def own_events(self) -> frozenset[str]:
        return frozenset(e.id for e in self.catalog.in_scope(self.own))

    @cached_property
    def months(self) -> pd.DatetimeIndex:
        """From the fit's first month to the span's last."""
        return pd.date_range(self.y_pre.index[0], self.last, freq="MS")

    @property
    def n_pre(self) -> int:
        return len(self.y_pre)

    @property
    def first(self) -> pd.Timestamp:
        """The first month the scenario changes."""
        return self.months[self.n_pre]

    @property
    def span(self) -> int:
        return len(self.months) - self.n_pre

    def choose(self) -> tuple[list[str], dict[str, int]]:
        """The control series, best first (see the module docstring), and per reason the
        number of candidates it excluded."""
        excluded: dict[str, int] = {}
        kept: dict[str, pd.Series] = {}
        for key, counts in self.candidates.items():
            if key == self.series_key:
                continue
            reason, values = _excluded(self, key, counts)
            if reason is None:
                kept[key] = values
            else:
                excluded[reason] = excluded.get(reason, 0) + 1
        z = pd.Series(np.log1p(self.y_pre.to_numpy(dtype=float)), index=self.y_pre.index)
        score = {k: _correlation(z, values.iloc[: -self.span]) for k, values in kept.items()}
        against = sum(1 for k in kept if score[k] <= 0)
        if against:
            excluded["moving against or apart from the series before the change"] = against

        def ranked(tier: bool) -> list[str]:
            tiered = [k for k in kept if score[k] > 0 and upstream(k) is tier]
            return sorted(tiered, key=lambda k: -score[k])

        # Encounter series first: the validity study measured them. Upstream indicators answer
        # where none qualifies; they often start later and would shorten the fit.
        chosen, rejected = _in_range_together(ranked(False), kept, self)
        later = ranked(True)
        if chosen and later:
            excluded["an upstream indicator, used only where no encounter series qualifies"] = len(
                later
            )
        elif not chosen:
            chosen, more = _in_range_together(later, kept, self)
            rejected += more
        if rejected:
            excluded["outside its range over the months fitted with the controls before it"] = (
                rejected
            )
        return chosen, excluded

    def named(self, names: Sequence[str]) -> tuple[list[str], list[str]]:
        """The user's controls, checked, and notes for those the automatic choice would
        exclude.

        Raises:
            ScenarioError: no name, more than ``MAX_CONTROLS``, the series itself, a key that
                is not a candidate, or one not observed in every month of the span and in at
                least ``MIN_FIT_MONTHS`` months before the change.
        """
        names = list(dict.fromkeys(names))
        if not 1 <= len(names) <= MAX_CONTROLS:
            raise ScenarioError(
                f"controls names 1 to {MAX_CONTROLS} control series; got {len(names)}"
            )
        notes = []
        for name in names:
            if name == self.series_key or name not in self.candidates:
                raise ScenarioError(
                    f"control {name!r} is not a candidate for {self.series_key}: name another "
                    "encounter series or an upstream indicator (keys starting "
                    f"{', '.join(UPSTREAM_SOURCES)})"
                )
            observed = self.candidates[name].reindex(self.months)
            begin = _first_of_run(observed)
            if begin > self.n_pre - MIN_FIT_MONTHS:
                raise ScenarioError(
                    f"control {name!r} is not observed in every month from {self.first:%Y-%m} "
                    f"to {self.months[-1]:%Y-%m} and in at least {MIN_FIT_MONTHS} months before"
                )
            reason = _rule_excluded(self, name) or _level_and_range(self, observed, begin)[0]
            if reason is not None:
                notes.append(
                    f"controls: {name} was named by the request; the automatic choice would "
                    f"exclude it ({reason})"
                )
        return names, notes


def _correlation(z: pd.Series, values: pd.Series) -> float:
    """How the 12-month changes of two ``log1p`` series correlate over the last ``RANK_MONTHS``
    months both have; 0 where either does not move."""
    both = pd.concat([z, values], axis=1, join="inner").iloc[-RANK_MONTHS:].to_numpy()
    change = both[12:] - both[:-12]
    if len(change) < 3 or (change.std(axis=0) == 0).any():
        return 0.0
    return float(np.corrcoef(change[:, 0], change[:, 1])[0, 1])


def _in_range_together(
    ranked: list[str], kept: Mapping[str, pd.Series], q: ControlQuestion
) -> tuple[list[str], int]:
    """The best ``MAX_CONTROLS`` of ``ranked`` whose span stays within their range over the
    months all of them are fitted on (from the latest first month among them), and how many
    better-ranked ones that left out."""
    chosen: list[str] = []
    rejected = 0
    for key in ranked:
        if len(chosen) == MAX_CONTROLS:
            break
        trial = [*chosen, key]
        start = max(kept[k].index[0] for k in trial)
        if all(_in_range(kept[k].loc[start:], q.span) for k in trial):
            chosen = trial
        else:
            rejected += 1
    return chosen, rejected


def _in_range(values: pd.Series, span: int) -> bool:
    pre, after = values.iloc[:-span], values.iloc[-span:]
    return bool(pre.min() <= after.min() and after.max() <= pre.max())


def _excluded(q: ControlQuestion, key: str, counts: pd.Series) -> tuple[str | None, pd.Series]:
    """Why ``key`` cannot be a control, or None and its ``log1p`` counts from its first month
    in the fit window through the span."""
    reason = _rule_excluded(q, key)
    if reason is not None:
        return reason, counts
    observed = counts.reindex(q.months)
    begin = _first_of_run(observed)
    if not upstream(key) and begin > 0:
        return "not observed in every month of the fit and the span", counts
    if begin > q.n_pre - MIN_FIT_MONTHS:
        return (
            f"observed in fewer than {MIN_FIT_MONTHS} months before the change or not in every "
            "month of the span"
        ), counts
    return _level_and_range(q, observed, begin)


def _rule_excluded(q: ControlQuestion, key: str) -> str | None:
    return _upstream_excluded(q) if upstream(key) else _encounter_excluded(q, key)


def _level_and_range(
    q: ControlQuestion, observed: pd.Series, begin: int
) -> tuple[str | None, pd.Series]:
    """``observed``: the counts over ``q.months``, every month from ``begin`` on."""
    if observed.iloc[q.n_pre - LEVEL_MONTHS : q.n_pre].mean() < MIN_CONTROL_LEVEL:
        return f"under {MIN_CONTROL_LEVEL:.0f} a month before the change", observed
    values = np.log1p(observed.iloc[begin:])
    if not _in_range(values, q.span):
        return "outside its range of the months before the change", observed
    return None, values


def _upstream_excluded(q: ControlQuestion) -> str | None:
    if not {e.actor for e in q.moved} <= DOWNSTREAM_ACTORS:
        return "an upstream indicator, but the scenario changes an event that may act upstream"
    return None


def _encounter_excluded(q: ControlQuestion, key: str) -> str | None:
    other = _encounter_key(key)
    if other is None:
        return "not an encounter series or an upstream indicator"
    if not disjoint(q.own, other):
        return "counts encounters the series counts"
    events = q.catalog.in_scope(other)
    if any(e.id in q.moved_ids for e in events):
        return "in the scope of an event the scenario changes"
    for e in events:
        if e.id in q.own_events:
            continue
        for day in (e.start, e.end):
            month = None if day is None else pd.Timestamp(day).to_period("M").to_timestamp()
            if month is not None and q.first <= month <= q.months[-1]:
                return "an event of its own starts or ends in the span"
    return None


def observed_from(counts: pd.Series, months: pd.DatetimeIndex) -> int:
    """The position in ``months`` from which ``counts`` has every month (a series may start
    later, or miss months); ``len(months)`` when it lacks the last."""
    return _first_of_run(counts.reindex(months))


def _first_of_run(observed: pd.Series) -> int:
    gaps = np.flatnonzero(observed.isna().to_numpy())
    return int(gaps[-1]) + 1 if len(gaps) else 0
