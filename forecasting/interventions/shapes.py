"""Event shapes and their monthly values.

An event is in force from its ``start`` to its ``end`` (both inclusive days; no end: for ever,
except a pulse, which lasts one month by default). Its value in a month is

    value = fraction of the month's days in force × profile(k)

where ``k`` counts months from the start month (0 in the start month) and the profile is

- ``step`` and ``pulse``: 1;
- ``ramp`` (``ramp_months: n``): ``min(1, (k + 1) / n)``, i.e. 1/n, 2/n, … 1;
- ``decay`` (``half_life_months: h``): ``0.5 ** (k / h)``, i.e. 1 in the start month, halving
  every ``h`` months, and 0 once it falls below ``DECAY_FLOOR`` (0.1 %): a 2001 shock would
  otherwise linger at 1e-12 in 2016, and a model fitted from then would give it an absurd
  coefficient.

A value is the share of the event's effect in force: the regression families multiply the count by
``1 + effect × value`` (see ``forecasting.models._statespace``).

So a step from the 22nd of a 31-day month is 10/31 that month and 1 after; a decay with a one-month
half-life from a month start is 1, 0.5, 0.25, …. After its end every shape is 0, a decay included:
an end date says the measure stopped, and an event whose effect should fade out on its own is a
decay without an end.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import BeforeValidator, Field

from forecasting.interventions._base import StrictModel

DECAY_FLOOR = 1e-3

SHAPES = {
    "step": "1 while in force",
    "pulse": "1 while in force; without an end, in force for one month",
    "ramp": "rises linearly to 1 over ramp_months months (needs ramp_months)",
    "decay": "1 in the start month, halving every half_life_months (needs half_life_months)",
}


class _Shape(StrictModel):
    type: str

    def last_day(self, start: dt.date, end: dt.date | None) -> dt.date | None:
        """The last day in force (inclusive), or None when the event has no end."""
        return end

    def profile(self, k: np.ndarray) -> np.ndarray:
        """The shape's level ``k`` months after its start month (``k >= 0``)."""
        return np.ones(len(k))

    @property
    def label(self) -> str:
        """Short text for tables, e.g. ``ramp 6m``."""
        return self.type


class Step(_Shape):
    """A lasting change: 1 while in force."""

    type: Literal["step"] = "step"


class Pulse(_Shape):
    """A temporary change: 1 while in force; without an end, in force for one month."""

    type: Literal["pulse"] = "pulse"

    def last_day(self, start: dt.date, end: dt.date | None) -> dt.date | None:
        if end is not None:
            return end
        return (pd.Timestamp(start) + pd.DateOffset(months=1) - pd.Timedelta(days=1)).date()


class Ramp(_Shape):
    """A change phased in linearly over ``ramp_months`` months: 1/n, 2/n, …, 1."""

    type: Literal["ramp"] = "ramp"
    ramp_months: int = Field(ge=1, description="months to reach full intensity")

    def profile(self, k: np.ndarray) -> np.ndarray:
        return np.minimum(1.0, (k + 1) / self.ramp_months)

    @property
    def label(self) -> str:
        return f"ramp {self.ramp_months}m"


class Decay(_Shape):
    """A shock that fades: 1 in the start month, halving every ``half_life_months``."""

    type: Literal["decay"] = "decay"
    half_life_months: float = Field(gt=0, allow_inf_nan=False, description="months to halve")

    def profile(self, k: np.ndarray) -> np.ndarray:
        values = 0.5 ** (k / self.half_life_months)
        return np.where(values < DECAY_FLOOR, 0.0, values)

    @property
    def label(self) -> str:
        return f"decay {self.half_life_months:g}m"


def _shape_input(value: object) -> object:
    """Accept ``step`` for ``{type: step}`` and reject unknown shapes naming the accepted ones."""
    accepted = "; ".join(f"{name} ({text})" for name, text in SHAPES.items())
    if isinstance(value, _Shape):
        return value
    if isinstance(value, str):
        value = {"type": value}
    if not isinstance(value, dict) or "type" not in value:
        raise ValueError(
            f"shape must be a name or a mapping with 'type', e.g. 'step' or "
            f"{{type: ramp, ramp_months: 3}}; got {value!r}; accepted: {accepted}"
        )
    if not isinstance(value["type"], str) or value["type"] not in SHAPES:
        raise ValueError(f"unknown shape '{value['type']}'; accepted: {accepted}")
    return value


#: A validated shape: a name (``step``) or a mapping (``{type: ramp, ramp_months: 3}``).
Shape = Annotated[
    Annotated[Step | Pulse | Ramp | Decay, Field(discriminator="type")],
    BeforeValidator(_shape_input),
]


def monthly_values(
    shape: Step | Pulse | Ramp | Decay,
    start: dt.date,
    end: dt.date | None,
    months: pd.DatetimeIndex,
) -> np.ndarray:
    """The shape's value in each month of ``months`` (month starts), as float64.

    Args:
        shape: the event's shape.
        start: first day in force.
        end: last day in force (inclusive), or None.
        months: month starts to evaluate.
    """
    first = months.to_numpy().astype("datetime64[D]")
    days = months.days_in_month.to_numpy()
    last = first + (days - 1)
    lo = np.maximum(first, np.datetime64(start, "D"))
    end_day = shape.last_day(start, end)
    hi = last if end_day is None else np.minimum(last, np.datetime64(end_day, "D"))
    fraction = np.clip((hi - lo).astype(int) + 1, 0, None) / days
    k = (months.year.to_numpy() - start.year) * 12 + months.month.to_numpy() - start.month
    # Months before the start have fraction 0; clipping k keeps ramp/decay finite there.
    return (fraction * shape.profile(np.maximum(k, 0))).astype(float)
