"""Decompose a month-over-month (or year-over-year) change into trend, season, events and the rest.

A structural model (:class:`~forecasting.models.UCM`) writes ``log1p(y_t)`` as

    level_t + seasonal_t + x_t' beta + irregular_t

so the change between month ``a`` and month ``b`` on that scale splits exactly into the change of
the smoothed level (``trend``), of the smoothed seasonal (``seasonal``), ``(x_b - x_a)_j beta_j``
per regressor that moves, and the rest (``remainder``: the irregular terms, what no component
explains).

**From logs to counts.** A log change ``dz_c`` becomes ``L * dz_c`` encounters, ``L`` the
logarithmic mean of ``y_a + 1`` and ``y_b + 1`` (``(y_b - y_a) / (z_b - z_a)``): the split of the
logarithmic-mean Divisia index, which adds up to the observed change exactly, does not depend on
the order of the components, and gives each the same share of the count change as of the log
change.

**Intervals** come from joint draws of the smoothed level and seasonal in both months (their
smoothed covariances and the smoothed cross-covariance between the months) and of the
coefficients (the fit's covariance). The smoothed states depend linearly on the coefficients, so
each coefficient draw moves them by a fixed amount, computed once. The remainder is what the draw
leaves of the observed change, so every draw adds up.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasting.effects import Regression, regression, summarise
from forecasting.errors import DataError
from forecasting.frame import DEFAULT_LEVEL, check_level, hi_col, interval_columns, lo_col
from forecasting.interventions import Catalog, month_index
from forecasting.models.base import Forecaster

COMPONENT = "component"
NAME = "name"
CHANGE = "change"
LOG_CHANGE = "log_change"
SEASONAL = "seasonal"
TREND = "trend"
REMAINDER = "remainder"
OTHER = "other_interventions"
TOTAL = "total"
#: Regressors that move less than this between the two months are summed into one row.
MIN_REGRESSOR_CHANGE = 0.01
#: ``vs`` → months back to the month compared with.
VS = {"previous": 1, "year": 12}
DEFAULT_DRAWS = 4000
_NAMES = {
    SEASONAL: "the seasonal pattern",
    TREND: "the trend",
    OTHER: "other interventions with small changes",
    REMAINDER: "what no component explains",
    TOTAL: "the observed change",
}


@dataclass(frozen=True)
class DecompositionResult:
    """The change of one series between two months, split by component.

    Attributes:
        series: the series key.
        month: the month explained.
        compared_to: the month it is compared with.
        vs: ``previous`` or ``year``.
        level: interval levels in percent.
        values: the observed counts of ``compared_to`` and ``month``.
        frame: one row per component: ``seasonal``, ``trend``, each regressor whose value
            changes between the months, ``remainder``, then ``total``. Columns ``component``,
            ``name`` (plain words), ``change`` (encounters, mean over draws), ``change_lo_<l>``,
            ``change_hi_<l>`` and ``log_change`` (on the ``log1p`` scale).
        summary: one plain-language paragraph with the figures.
        notes: how the split was made and what it leaves out.
    """

    series: str
    month: pd.Timestamp
    compared_to: pd.Timestamp
    vs: str
    level: tuple[int, ...]
    values: tuple[float, float]
    frame: pd.DataFrame
    summary: str
    notes: tuple[str, ...]

    def to_dict(self) -> dict:
        """JSON-ready: ``series``, ``month``, ``compared_to`` (``YYYY-MM``), ``vs``, ``level``,
        ``from``, ``to``, ``change``, ``components`` (the frame's rows), ``summary``, ``notes``."""
        rows = self.frame.copy()
        numeric = rows.columns.difference([COMPONENT, NAME, LOG_CHANGE])
        rows[numeric] = rows[numeric].round(1)
        rows[LOG_CHANGE] = rows[LOG_CHANGE].round(4)
        return {
            "series": self.series,
            "month": f"{self.month:%Y-%m}",
            "compared_to": f"{self.compared_to:%Y-%m}",
            "vs": self.vs,
            "level": list(self.level),
            "from": self.values[0],
            "to": self.values[1],
            "change": self.values[1] - self.values[0],
            "components": rows.to_dict(orient="records"),
            "summary": self.summary,
            "notes": list(self.notes),
        }

    def to_json(self, indent: int | None = None) -> str:
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent)


def _components(model: Forecaster) -> list[int]:
    res = model.results_
    level, seasonal = getattr(res, "level", None), getattr(res, "seasonal", None)
    if level is None or seasonal is None:
        raise NotImplementedError(
            f"{type(model).__name__} has no level and seasonal components; decomposing a change "
            "needs a structural model (UCM)"
        )
    return [level.offset, seasonal.offset]


def _state_gap(model: Forecaster, reg: Regression, idx: list[int], at: list[int]) -> np.ndarray:
    """How the smoothed states ``idx`` at times ``at`` move per unit of each coefficient."""
    res = model.results_
    clone = res.model.clone(res.model.data.orig_endog, exog=res.model.data.orig_exog)

    def states(params: pd.Series) -> np.ndarray:
        smoothed = clone.smooth(params, cov_type="none").smoothed_state
        return np.concatenate([smoothed[idx, t] for t in at])

    base = states(res.params)
    gap = np.empty((len(idx) * len(at), len(reg.columns)))
    for j, name in enumerate(reg.params):
        params = res.params.copy()
        params[name] += 1.0
        gap[:, j] = states(params) - base
    return gap


def _regressor_name(catalog: Catalog, column: str) -> str:
    for group in catalog.groups:
        if group.id == column:
            return group.name
    return catalog.get(column).name


def decompose(
    model: Forecaster,
    y: pd.Series,
    X: pd.DataFrame,
    catalog: Catalog,
    series_key: str,
    month: object,
    vs: str = "previous",
    level: Sequence[int] = DEFAULT_LEVEL,
    n_draws: int = DEFAULT_DRAWS,
    rng: np.random.Generator | int | None = 0,
) -> DecompositionResult:
    """Split the change of a series into a month from the month before (or a year before).

    Args:
        model: a fitted :class:`~forecasting.models.UCM` (level and seasonal components,
            regression on ``log1p`` counts).
        y: the series it was fitted on (month-start index ending at its cutoff).
        X: the design matrix it was fitted with.
        catalog: the catalog ``X`` came from (for the events' names).
        series_key: the series.
        month: the month to explain (``"2024-01"``).
        vs: ``previous`` (month over month) or ``year`` (year over year).
        level: interval levels in percent.
        n_draws: joint draws of states and coefficients behind the intervals.
        rng: seed or generator.

    Returns:
        The split, with a summary paragraph; see :class:`DecompositionResult`.

    Raises:
        NotImplementedError: the model has no level and seasonal components.
        DataError: ``y`` / ``X`` do not match the model, or a month outside ``y``.
        ValueError: unknown ``vs`` or bad levels.
    """
    levels = check_level(level)
    if vs not in VS:
        raise ValueError(f"vs must be one of {list(VS)}; got {vs!r}")
    reg = regression(model)
    idx = _components(model)
    res = model.results_
    if not isinstance(y, pd.Series) or len(y) != res.nobs or y.index[-1] != model.cutoff_:
        raise DataError(
            f"y must be the series the model was fitted on ({res.nobs} months to "
            f"{model.cutoff_:%Y-%m})"
        )
    if not isinstance(X, pd.DataFrame) or not X.index.equals(y.index):
        raise DataError("X must be the design matrix the model was fitted with, indexed like y")
    try:
        target = month_index(month, month)[0]
    except ValueError as exc:
        raise DataError(f"month must be a month such as '2024-01'; got {month!r}") from exc
    base = target - pd.DateOffset(months=VS[vs])
    for m in (base, target):
        if m not in y.index:
            raise DataError(
                f"{m:%Y-%m} is outside the fitted months {y.index[0]:%Y-%m}..{y.index[-1]:%Y-%m}"
                f"; month and the month it is compared with ({vs}) must both be observed"
            )
    a, b = y.index.get_loc(base), y.index.get_loc(target)
    draws_rng = np.random.default_rng(rng)

    # Joint smoothed distribution of (level_a, seasonal_a, level_b, seasonal_b).
    mean = np.concatenate([res.smoothed_state[idx, a], res.smoothed_state[idx, b]])
    cross = res.smoother_results.smoothed_state_autocovariance(lag=b - a, t=b)[np.ix_(idx, idx)]
    cov_a = res.smoothed_state_cov[np.ix_(idx, idx, [a])][..., 0]
    cov_b = res.smoothed_state_cov[np.ix_(idx, idx, [b])][..., 0]
    cov = np.block([[cov_a, cross.T], [cross, cov_b]])
    betas = reg.draws(n_draws, draws_rng)
    states = draws_rng.multivariate_normal(mean, cov, size=n_draws, method="eigh")
    if reg.columns:
        states += (betas - reg.beta) @ _state_gap(model, reg, idx, [a, b]).T

    z = np.log1p(y.to_numpy(dtype=float))
    dz = z[b] - z[a]
    parts: dict[str, np.ndarray] = {
        SEASONAL: states[:, 3] - states[:, 1],
        TREND: states[:, 2] - states[:, 0],
    }
    # On the scale the coefficients act on (fractional values are read multiplicatively).
    linear = model.linearise(X)
    dx = linear.iloc[b] - linear.iloc[a]
    notes = []
    small = []
    for column in X.columns:
        if dx[column] == 0:
            continue
        if column in reg.columns:
            part = dx[column] * betas[:, reg.index(column)]
            if abs(dx[column]) < MIN_REGRESSOR_CHANGE:
                small.append(column)
                parts[OTHER] = parts.get(OTHER, 0) + part
            else:
                parts[column] = part
        else:
            reason = model.dropped_regressors_.get(column, "not fitted by the model")
            notes.append(
                f"{column} changes between the two months but has no fitted effect ({reason}); "
                "its part is in the trend and the remainder"
            )
    if small:
        # Keep the table to the events that move: a decade-old decay changes by 1e-6 a month.
        parts[OTHER] = parts.pop(OTHER)
        notes.append(
            f"{OTHER} sums regressors whose value changes by less than {MIN_REGRESSOR_CHANGE:g} "
            f"between the months: {', '.join(small)}"
        )
    parts[REMAINDER] = dz - sum(parts.values())
    y_a, y_b = float(y.iloc[a]), float(y.iloc[b])
    # Logarithmic mean of y + 1: turns log changes into counts that add up to y_b - y_a.
    weight = (y_b - y_a) / dz if dz != 0 else y_a + 1
    rows = []
    for component, log_draws in parts.items():
        name = _NAMES.get(component) or _regressor_name(catalog, component)
        row = {COMPONENT: component, NAME: name}
        row.update({k: float(v) for k, v in summarise(weight * log_draws, levels, CHANGE).items()})
        row[LOG_CHANGE] = float(log_draws.mean())
        rows.append(row)
    total = {COMPONENT: TOTAL, NAME: _NAMES[TOTAL], CHANGE: y_b - y_a, LOG_CHANGE: dz}
    total.update(dict.fromkeys(interval_columns(levels, CHANGE), y_b - y_a))
    frame = pd.DataFrame([*rows, total])
    notes.append(
        "contributions are changes on the log1p scale times the logarithmic mean of the two "
        f"months' counts, so they add up to the observed change; intervals from {n_draws} "
        "joint draws of the smoothed level, seasonal and coefficients"
    )
    notes.append(
        "the trend is the smoothed level: it holds the lasting part of moves no component "
        "explains; the remainder holds only the transient part (the irregular term)"
    )
    summary = _summary(series_key, base, target, y_a, y_b, frame, max(levels))
    return DecompositionResult(
        series_key, target, base, vs, tuple(levels), (y_a, y_b), frame, summary, tuple(notes)
    )


def _count(value: float, signed: bool = True) -> str:
    value = float(np.round(value)) or 0.0  # no "−0"
    text = f"{value:+,.0f}" if signed else f"{value:,.0f}"
    return text.replace("-", "−")


def _summary(
    key: str,
    base: pd.Timestamp,
    target: pd.Timestamp,
    y_a: float,
    y_b: float,
    frame: pd.DataFrame,
    level: int,
) -> str:
    change = y_b - y_a
    verb = "rose" if change > 0 else "fell" if change < 0 else "stayed"
    text = (
        f"Between {base:%B %Y} and {target:%B %Y} {key} encounters {verb} from "
        f"{_count(y_a, False)} to {_count(y_b, False)} ({_count(change)}). Of this, "
    )
    labelled, remainder = [], ""
    for row in frame.to_dict(orient="records"):
        component = row[COMPONENT]
        figure = (
            f"{_count(row[CHANGE])} ({level} % interval {_count(row[lo_col(level, CHANGE)])} "
            f"to {_count(row[hi_col(level, CHANGE)])})"
        )
        if component == REMAINDER:
            remainder = f"and {figure} remains unexplained"
        elif component in (SEASONAL, TREND, OTHER):
            labelled.append((_NAMES[component], figure))
        elif component != TOTAL:
            labelled.append((f"{row[NAME]} ({component})", figure))
    first, *rest = labelled
    pieces = [f"{first[0]} accounts for {first[1]}", *(f"{n} {f}" for n, f in rest), remainder]
    return text + ", ".join(pieces) + "."
