"""Each shape's monthly values, pinned by hand."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from forecasting.interventions import Decay, Pulse, Ramp, Step, month_index, monthly_values
from forecasting.interventions.shapes import Shape


def values(shape, start, end=None, first="2023-12", last="2024-04") -> list[float]:
    end = dt.date.fromisoformat(end) if end else None
    months = month_index(first, last)
    return monthly_values(shape, dt.date.fromisoformat(start), end, months).tolist()


def approx(expected):
    return pytest.approx(expected, abs=1e-12)


def test_step_from_the_22nd_of_a_31_day_month_is_10_31_then_1():
    assert values(Step(), "2024-01-22") == approx([0, 10 / 31, 1, 1, 1])


def test_step_from_a_month_start_is_1_from_that_month():
    assert values(Step(), "2024-01-01") == approx([0, 1, 1, 1, 1])


def test_ended_step_counts_the_days_in_force_of_its_end_month_then_0():
    # End is the last day in force: 1-10 March of 31 days.
    assert values(Step(), "2024-01-01", "2024-03-10") == approx([0, 1, 1, 10 / 31, 0])


def test_step_starting_and_ending_in_one_month_is_its_days_in_force():
    assert values(Step(), "2024-01-10", "2024-01-19") == approx([0, 10 / 31, 0, 0, 0])


def test_pulse_without_end_lasts_one_month():
    assert values(Pulse(), "2024-01-01") == approx([0, 1, 0, 0, 0])
    # 16 Feb – 15 Mar 2024: 14 of February's 29 days, 15 of March's 31.
    assert values(Pulse(), "2024-02-16") == approx([0, 0, 14 / 29, 15 / 31, 0])


def test_pulse_with_end_is_the_fraction_of_days_in_force():
    assert values(Pulse(), "2024-03-19", "2024-03-20") == approx([0, 0, 0, 2 / 31, 0])


def test_ramp_rises_by_one_nth_a_month_to_1():
    assert values(Ramp(ramp_months=3), "2024-01-01") == approx([0, 1 / 3, 2 / 3, 1, 1])


def test_ramp_first_month_is_weighted_by_the_days_in_force():
    assert values(Ramp(ramp_months=2), "2024-01-16") == approx([0, 16 / 31 * 1 / 2, 1, 1, 1])


def test_ended_ramp_falls_to_0_after_its_end():
    assert values(Ramp(ramp_months=4), "2024-01-01", "2024-02-14") == approx(
        [0, 1 / 4, 2 / 4 * 14 / 29, 0, 0]
    )


def test_decay_with_a_one_month_half_life_halves_each_month():
    assert values(Decay(half_life_months=1), "2024-01-01") == approx([0, 1, 0.5, 0.25, 0.125])


def test_decay_with_a_two_month_half_life_halves_every_two_months():
    expected = [0, 1, 2**-0.5, 0.5, 2**-1.5]
    assert values(Decay(half_life_months=2), "2024-01-01") == approx(expected)


def test_decay_first_month_is_weighted_by_the_days_in_force():
    assert values(Decay(half_life_months=1), "2024-01-22") == approx([0, 10 / 31, 0.5, 0.25, 0.125])


def test_ended_decay_is_cut_to_0_after_its_end():
    assert values(Decay(half_life_months=1), "2024-01-01", "2024-02-15") == approx(
        [0, 1, 0.5 * 15 / 29, 0, 0]
    )


def test_values_are_zero_before_the_start_and_float64():
    out = monthly_values(Step(), dt.date(2030, 1, 1), None, month_index("2029-01", "2029-12"))
    assert out.dtype == np.float64 and not out.any()


shape = TypeAdapter(Shape)


def test_shape_reads_a_name_or_a_mapping():
    assert shape.validate_python("step") == Step()
    assert shape.validate_python({"type": "ramp", "ramp_months": 3}) == Ramp(ramp_months=3)
    assert Ramp(ramp_months=6).label == "ramp 6m" and Decay(half_life_months=2).label == "decay 2m"


def test_unknown_shape_names_the_accepted_ones():
    with pytest.raises(ValidationError, match=r"unknown shape 'spike'; accepted: step .*decay"):
        shape.validate_python("spike")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"type": "ramp"}, "ramp_months"),
        ({"type": "ramp", "ramp_months": 0}, "greater than or equal to 1"),
        ({"type": "decay", "half_life_months": -1}, "greater than 0"),
        ({"type": "ramp", "months": 3}, r"unknown key\(s\) months; accepted: type, ramp_months"),
        (3, "shape must be a name or a mapping"),
    ],
)
def test_bad_shape_parameters_say_what_is_accepted(data, message):
    with pytest.raises(ValidationError, match=message):
        shape.validate_python(data)


def test_a_decay_ends_once_it_falls_below_the_floor():
    from forecasting.interventions.shapes import DECAY_FLOOR

    values = Decay(half_life_months=1).profile(np.arange(12))
    assert values[9] == 0.5**9 and 0.5**10 < DECAY_FLOOR and values[10] == 0.0
