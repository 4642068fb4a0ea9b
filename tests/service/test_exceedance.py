"""Threshold probabilities that reproduce the calibrated intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from forecasting.frame import hi_col, lo_col
from service.exceedance import calibrate_paths, lognormal_exceedance, path_exceedance

LEVELS = [80, 95]


def _frame(mu: np.ndarray, sigma: np.ndarray) -> pd.DataFrame:
    """Bounds of a normal log1p(y): mean at the median (the calibrator's centre)."""
    out = {"mean": np.expm1(mu)}
    for lv in LEVELS:
        z = stats.norm.ppf(0.5 + lv / 200)
        out[lo_col(lv)] = np.expm1(mu - z * sigma)
        out[hi_col(lv)] = np.expm1(mu + z * sigma)
    return pd.DataFrame(out)


def test_lognormal_reproduces_each_bound():
    frame = _frame(np.log1p([1000.0, 5000.0]), np.array([0.3, 0.8]))
    # A skewed interval: the upper arm twice the lower.
    frame.loc[1, ["hi_80", "hi_95"]] = np.expm1(
        np.log1p(5000.0)
        + 2 * (np.log1p(frame.loc[1, ["hi_80", "hi_95"]].astype(float)) - np.log1p(5000.0))
    )
    for i in range(2):
        row = frame.iloc[[i]]
        p = lognormal_exceedance(
            row,
            LEVELS,
            [row["lo_95"].item(), row["lo_80"].item(), row["hi_80"].item(), row["hi_95"].item()],
        )[0]
        np.testing.assert_allclose(p, [0.975, 0.9, 0.1, 0.025], atol=1e-9)


def test_lognormal_tails_and_clipped_bounds():
    frame = pd.DataFrame(
        {"mean": [100.0], "lo_80": [0.0], "hi_80": [300.0], "lo_95": [0.0], "hi_95": [600.0]}
    )
    p = lognormal_exceedance(frame, LEVELS, [0, 300, 600, 1e300])[0]
    assert p[0] > 0.9999
    np.testing.assert_allclose(p[1:3], [0.1, 0.025], atol=1e-9)
    assert p[3] < 1e-12
    assert np.all(np.diff(lognormal_exceedance(frame, LEVELS, np.linspace(0, 2000, 50))[0]) <= 0)


def test_calibrated_paths_land_on_the_calibrated_bounds():
    rng = np.random.default_rng(0)
    mu, sigma = np.log1p([2000.0, 4000.0, 8000.0]), np.array([0.1, 0.2, 0.3])
    paths = np.expm1(mu + sigma * rng.standard_normal((40_000, 3)))
    model = _frame(mu, sigma)
    calibrated = _frame(mu, 2.5 * sigma)  # the model was far too confident
    mapped = calibrate_paths(paths, model, calibrated, LEVELS)
    assert mapped.shape == paths.shape and (mapped >= 0).all()
    for lv in LEVELS:
        p_hi = path_exceedance(mapped, [])  # no thresholds: shape (h, 0)
        assert p_hi.shape == (3, 0)
        above = (mapped > calibrated[hi_col(lv)].to_numpy()).mean(axis=0)
        below = (mapped < calibrated[lo_col(lv)].to_numpy()).mean(axis=0)
        np.testing.assert_allclose(above, (100 - lv) / 200, atol=0.006)
        np.testing.assert_allclose(below, (100 - lv) / 200, atol=0.006)
    # Unmapped, the same paths put almost nothing above the calibrated 80 % bound.
    assert (paths > calibrated["hi_80"].to_numpy()).mean() < 0.01


def test_path_exceedance_counts_paths_above():
    paths = np.array([[1.0, 10.0], [3.0, 30.0], [5.0, 50.0], [7.0, 70.0]])
    np.testing.assert_allclose(path_exceedance(paths, [2, 40]), [[0.75, 0.0], [1.0, 0.5]])
