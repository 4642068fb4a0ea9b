"""The plain-language paragraphs that counterfactuals, decompositions and onset sensitivities
return beside their tables: every sentence the library writes for a reader lives here."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.frame import (
    AIC,
    CHANGE,
    CLOSEST_REGRESSOR,
    COMPONENT,
    COUNTERFACTUAL,
    EFFECT,
    MONTHS_APART,
    NAME,
    ONSET,
    OTHER_INTERVENTIONS,
    REFERENCE,
    REMAINDER,
    SEASONAL,
    TOTAL,
    TREND,
    hi_col,
    lo_col,
)
from forecasting.interventions import Scenario

#: Plain words for the decomposition's components other than the interventions.
COMPONENT_NAMES = {
    SEASONAL: "the seasonal pattern",
    TREND: "the trend",
    OTHER_INTERVENTIONS: "other interventions with small changes",
    REMAINDER: "what no component explains",
    TOTAL: "the observed change",
}
#: Fewer months than this in which a moved event differs (by at least half) from another
#: regressor of the fit, and the data cannot tell the two effects apart.
MIN_MONTHS_APART = 2


def count(value: float, signed: bool = False) -> str:
    """Encounters rounded to a whole number with thousands separators and a true minus sign;
    ``signed`` adds ``+`` to positive values."""
    value = float(np.round(value)) or 0.0  # no "−0"
    text = f"{value:,.0f}".replace("-", "−")
    return "+" + text if signed and value > 0 else text


def _pct(value: float) -> str:
    return f"{value:+.0f} %".replace("-", "−")


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
    for m in scenario.indicators:
        level = f"held at its {m.hold:%Y-%m} level" if m.hold else f"at {m.scale:g}× its count"
        parts.append(f"with {m.key} {level}{_window(m)}")
    return "; ".join(parts) or "no change"


def counterfactual_summary(
    key: str,
    scenario: Scenario,
    method: str,
    months: pd.DatetimeIndex,
    observed: tuple[bool, bool],
    totals: dict[str, float],
    level: int,
) -> str:
    """The counterfactual's paragraph: the reference, the counterfactual and the effect over the
    span, with their ``level`` % intervals.

    Args:
        observed: whether all the span's months were observed, and whether any was.
        totals: the span totals of :class:`~forecasting.counterfactual.CounterfactualResult`.
    """
    all_observed, any_observed = observed
    what = "observed" if all_observed else "observed and forecast" if any_observed else "forecast"

    def interval(name: str, fmt=count) -> str:
        low, high = totals[lo_col(level, name)], totals[hi_col(level, name)]
        return f"{level} % interval {fmt(low)} to {fmt(high)}"

    def signed(value: float) -> str:
        return count(value, signed=True)

    span = f"{months[0]:%B %Y}" + (f" to {months[-1]:%B %Y}" if len(months) > 1 else "")
    ref = f"{count(totals[REFERENCE])} encounters ({what}"
    ref += ")" if all_observed else f"; {interval(REFERENCE)})"
    return (
        f"{key}, {span}, {describe_scenario(scenario)} (method {method}): the reference is "
        f"{ref}; the counterfactual {count(totals[COUNTERFACTUAL])} "
        f"({interval(COUNTERFACTUAL)}). The effect (reference − counterfactual) is "
        f"{signed(totals[EFFECT])} encounters ({interval(EFFECT, signed)}), "
        f"{_pct(totals['effect_pct'])} of the counterfactual ({interval('effect_pct', _pct)})."
    )


def decomposition_summary(
    key: str,
    months: tuple[pd.Timestamp, pd.Timestamp],
    values: tuple[float, float],
    frame: pd.DataFrame,
    level: int,
) -> str:
    """The decomposition's paragraph: the observed change and each component's part of it.

    Args:
        months: the month compared with, and the month explained.
        values: their observed counts.
        frame: the decomposition's rows (``component``, ``name``, ``change`` with bounds).
    """
    (base, target), (y_a, y_b) = months, values
    change = y_b - y_a
    verb = "rose" if change > 0 else "fell" if change < 0 else "stayed"
    text = (
        f"Between {base:%B %Y} and {target:%B %Y} {key} encounters {verb} from "
        f"{count(y_a)} to {count(y_b)} ({count(change, signed=True)}). Of this, "
    )
    labelled, remainder = [], ""
    for row in frame.to_dict(orient="records"):
        component = row[COMPONENT]
        low, high = row[lo_col(level, CHANGE)], row[hi_col(level, CHANGE)]
        figure = (
            f"{count(row[CHANGE], signed=True)} ({level} % interval {count(low, signed=True)} "
            f"to {count(high, signed=True)})"
        )
        if component == REMAINDER:
            remainder = f"and {figure} remains unexplained"
        elif component in (SEASONAL, TREND, OTHER_INTERVENTIONS):
            labelled.append((COMPONENT_NAMES[component], figure))
        elif component != TOTAL:
            labelled.append((f"{row[NAME]} ({component})", figure))
    first, *rest = labelled
    pieces = [f"{first[0]} accounts for {first[1]}", *(f"{n} {f}" for n, f in rest), remainder]
    return text + ", ".join(pieces) + "."


def onset_summary(table: pd.DataFrame, event: str, key: str, level: int) -> str:
    """The onset-sensitivity paragraph: the effect at the catalog's dates, the shifts that
    coincide with another regressor, the range of the others, and which onset fits best."""
    at = table.loc[0]
    text = (
        f"At the catalog's dates ({at[ONSET]}) {event} changed {key} by {at[EFFECT]:+.1f}% "
        f"({level}% interval {at[lo_col(level)]:+.1f}% to {at[hi_col(level)]:+.1f}%)."
    )
    tangled = table[table[MONTHS_APART] < MIN_MONTHS_APART]
    if 0 in tangled.index:
        text += (
            f" At those dates it differs from {tangled.loc[0, CLOSEST_REGRESSOR]} in "
            f"{int(tangled.loc[0, MONTHS_APART])} month(s) only, so the data cannot tell the two "
            "effects apart."
        )
    moved = tangled.drop(index=0, errors="ignore")
    if len(moved):
        shifts = ", ".join(f"{s:+d}" for s in moved.index)
        names = ", ".join(sorted(set(moved[CLOSEST_REGRESSOR])))
        text += (
            f" Moved by {shifts} months it coincides with {names} (under {MIN_MONTHS_APART} "
            "months apart), and those estimates are left out of the range that follows."
        )
    effects = table[EFFECT].drop(index=moved.index).dropna()
    if len(table) > 1 and len(effects):
        text += (
            f" Moving its dates by {table.index.min():+d} to {table.index.max():+d} months, the "
            f"estimate ranges from {effects.min():+.1f}% to {effects.max():+.1f}%."
        )
    return text + _best_onset(table)


def _best_onset(table: pd.DataFrame) -> str:
    aic = table[AIC].dropna()
    if len(aic) < 2 or 0 not in aic.index:
        return ""
    ranked = aic.sort_values()
    best, runner = int(ranked.index[0]), int(ranked.index[1])
    if best == 0:
        gap = ranked.iloc[1] - ranked.iloc[0]
        text = (
            f" The catalog's dates fit the data best; next is a shift of {runner:+d} months, "
            f"AIC {gap:+.1f}."
        )
    else:
        gap = ranked.iloc[0] - aic.loc[0]
        text = (
            f" The data fit best with a shift of {best:+d} months (onset "
            f"{table.loc[best, ONSET]}), AIC {gap:+.1f} against the catalog's dates."
        )
    if abs(gap) < 2:
        text += " An AIC difference under 2 does not single out an onset."
    return text
