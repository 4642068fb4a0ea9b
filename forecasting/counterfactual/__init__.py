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
estimated effects. Three methods:

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
``controls``
    ``pre_period`` with control series as regressors: other series the scenario's events do not
    act on (encounter series, else flows counted upstream of Mexico), chosen from the engine's
    ``candidates`` by the catalog's scopes and the months before the change, or named by the
    request, so that what the series shares with them after the change is in the counterfactual
    (CausalImpact with control series; :mod:`forecasting.counterfactual.donors` says which
    series qualify). Past months only; where no series qualifies the answer comes from
    ``regressor`` and says so.

Column naming (frame and JSON rows): ``ds``, ``observed`` (bool), then for each quantity ``q`` in
``reference``, ``counterfactual``, ``effect``, ``cumulative_effect``: ``q`` (mean over paths, on
the count scale), and ``q_lo_<l>``, ``q_hi_<l>`` for each level ``l``, e.g. ``effect_lo_95``.
Observed months have a reference equal to the observation, with bounds equal to it.

The heavy part (coefficient draws, baseline paths, the pre-period fits) is computed once per
:class:`CounterfactualEngine`; a request on a built engine is array arithmetic. The engine lives in
``engine.py``, its refits (orders, kept events) in ``refits.py``, the ``pre_period`` method in
``pre_period.py`` and the answer's assembly in ``result.py``; the summary's words are in
:mod:`forecasting.narrative`.
"""

from forecasting.counterfactual.donors import panel_candidates, upstream_candidates
from forecasting.counterfactual.engine import (
    CONTROLS,
    DEFAULT_HORIZON,
    DEFAULT_PATHS,
    METHODS,
    PRE_PERIOD,
    REGRESSOR,
    CounterfactualEngine,
    counterfactual,
)
from forecasting.counterfactual.result import CounterfactualResult, counterfactual_columns
from forecasting.narrative import describe_scenario

__all__ = [
    "CONTROLS",
    "DEFAULT_HORIZON",
    "DEFAULT_PATHS",
    "METHODS",
    "PRE_PERIOD",
    "REGRESSOR",
    "CounterfactualEngine",
    "CounterfactualResult",
    "counterfactual",
    "counterfactual_columns",
    "describe_scenario",
    "panel_candidates",
    "upstream_candidates",
]
