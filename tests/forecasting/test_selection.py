"""Choosing among candidates from their backtest skill."""

from __future__ import annotations

import numpy as np
import pytest

from forecasting.selection import choose_pooled


def test_pooled_choice_is_the_best_geometric_mean_over_series():
    skill = {
        # ets wins two series narrowly and loses one badly; naive is steady.
        "a": {"naive": 0.8, "ets": 0.7},
        "b": {"naive": 0.8, "ets": 0.7},
        "c": {"naive": 0.8, "ets": 2.0},
    }
    assert choose_pooled(skill) == "naive"
    skill["c"]["ets"] = 1.0
    assert choose_pooled(skill) == "ets"  # 0.7 * 0.7 * 1.0 < 0.8 ** 3


def test_pooled_choice_leaves_out_scores_that_are_not_finite_and_positive():
    skill = {"a": {"naive": 0.9, "ets": np.nan}, "b": {"naive": 0.9, "ets": 0.0}}
    assert choose_pooled(skill) == "naive"
    with pytest.raises(ValueError, match="no candidate has a finite positive skill"):
        choose_pooled({"a": {"ets": np.inf}})
