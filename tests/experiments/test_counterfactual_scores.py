"""The validity study's scores and their bootstrap intervals (experiments/counterfactual/run.py)."""

import numpy as np
import pytest

from experiments.counterfactual.run import DEFAULT_METHOD, bootstrap_intervals, errors, score


def _record(key: str, onset: str, injection: str, truth: float, estimate: float, lo, hi) -> dict:
    return {
        "key": key,
        "onset": onset,
        "injection": injection,
        "truth": truth,
        "estimates": [
            {"method": DEFAULT_METHOD, "estimate": estimate, "lo": lo, "hi": hi, "dropped": False}
        ],
    }


def test_scores_are_shares_of_the_truth():
    records = [
        _record("a", "2010-01", "step_minus_30", -100.0, -120.0, -150.0, -90.0),
        _record("a", "2010-01", "step_plus_40", 100.0, 80.0, 10.0, 90.0),
    ]
    row = score(errors(records)).loc[(DEFAULT_METHOD, "all")]
    assert row["bias"] == pytest.approx(0.0)
    assert row["rmse"] == pytest.approx(0.2)
    assert row["coverage"] == pytest.approx(0.5)
    assert row["excludes_zero"] == pytest.approx(1.0)


def test_bootstrap_resamples_onsets_and_brackets_the_figure():
    rng = np.random.default_rng(0)
    records = []
    for i in range(30):
        miss = rng.normal(0, 0.4)
        for injection, truth in (("step_minus_30", -100.0), ("step_plus_40", 100.0)):
            estimate = truth * (1 + miss)
            records.append(_record("a", f"20{i:02d}-01", injection, truth, estimate, -1e3, 1e3))
    data = errors(records)
    rmse = score(data).loc[(DEFAULT_METHOD, "all"), "rmse"]
    intervals = bootstrap_intervals(data)
    lo, hi = intervals["rmse"]
    assert lo < rmse < hi and hi - lo > 0.05
    # Every interval covers every truth: the coverage figure has no sampling spread.
    assert intervals["coverage_low"] == (1.0, 1.0)
