"""Known-value tests: every expected number is worked out by hand in the comment beside it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from forecasting import metrics

Y = [10, 20, 30, 40]
Y_HAT = [12, 18, 33, 40]  # errors -2, 2, -3, 0
Y_TRAIN = [1, 2, 4, 6, 9]  # season 2: |4-1|, |6-2|, |9-4| = 3, 4, 5


def test_mae():
    assert metrics.mae(Y, Y_HAT) == pytest.approx(7 / 4)


def test_mase_divides_by_the_in_sample_seasonal_naive_mae():
    # (7/4) / mean(3, 4, 5)
    assert metrics.mase(Y, Y_HAT, Y_TRAIN, season=2) == pytest.approx(1.75 / 4)


def test_mase_default_season_is_twelve():
    train = np.arange(13.0)  # the only seasonal difference is 12 - 0
    assert metrics.mase(Y, Y_HAT, train) == pytest.approx(1.75 / 12)


def test_mase_is_nan_when_the_history_repeats_exactly():
    assert math.isnan(metrics.mase(Y, Y_HAT, [5, 5, 5], season=1))


def test_rmsse():
    # sqrt(mean(4, 4, 9, 0) / mean(9, 16, 25))
    expected = math.sqrt(4.25 / (50 / 3))
    assert metrics.rmsse(Y, Y_HAT, Y_TRAIN, season=2) == pytest.approx(expected)


def test_smape_in_percent():
    # 200/4 * (2/22 + 2/38 + 3/63 + 0/80)
    expected = 50 * (2 / 22 + 2 / 38 + 3 / 63)
    assert metrics.smape(Y, Y_HAT) == pytest.approx(expected)
    assert metrics.smape([0, 10], [0, 10]) == 0.0


def test_interval_measures():
    y, lo, hi = [1, 5, 10], [0, 6, 10], [2, 8, 12]  # 1 inside, 5 below, 10 on the bound
    assert metrics.coverage(y, lo, hi) == pytest.approx(2 / 3)
    # mean width 2 over mean actual 16/3
    assert metrics.relative_width(y, lo, hi) == pytest.approx(0.375)
    # widths 2, 2, 2; the miss by 1 costs 2/0.2 * 1 = 10
    assert metrics.winkler(y, lo, hi, level=80) == pytest.approx(16 / 3)
    with pytest.raises(ValueError, match=r"percent integer in \(0, 100\), e.g. 95; got 0.8"):
        metrics.winkler(y, lo, hi, level=0.8)


def test_msis_scales_the_interval_score_by_the_seasonal_naive_mae():
    y, lo, hi = [1, 5, 10], [0, 6, 10], [2, 8, 12]  # winkler at 80 %: 16/3 (above)
    # scale mean(3, 4, 5) = 4 with season 2
    assert metrics.msis(y, lo, hi, 80, Y_TRAIN, season=2) == pytest.approx(16 / 3 / 4)
    assert math.isnan(metrics.msis(y, lo, hi, 80, [5, 5, 5], season=1))


def test_quantile_loss():
    # tau 0.9: under-forecast by 2 costs 0.9 * 2; over-forecast by 3 costs 0.1 * 3; exact 0
    losses = metrics.quantile_losses([10, 10, 10], [8, 13, 10], 0.9)
    assert losses == pytest.approx([1.8, 0.3, 0.0])
    with pytest.raises(ValueError, match=r"tau must be a probability in \(0, 1\).*got 90"):
        metrics.quantile_losses([1], [1], 90)


def test_weighted_interval_score_is_twice_the_mean_pinball_loss_of_its_quantiles():
    y, median = np.array([10.0, 3.0]), np.array([9.0, 6.0])
    lo80, hi80, lo95, hi95 = [8.0, 5.0], [11.0, 7.0], [7.0, 4.0], [13.0, 8.0]
    wis = metrics.weighted_interval_scores(y, median, {80: (lo80, hi80), 95: (lo95, hi95)})
    # first month: |10-9|/2 = 0.5; IS80 = 3, IS95 = 6; (0.5 + 0.1*3 + 0.025*6) / 2.5
    assert wis[0] == pytest.approx(0.95 / 2.5)
    quantiles = {0.025: lo95, 0.1: lo80, 0.5: median, 0.9: hi80, 0.975: hi95}
    pinball = np.mean([metrics.quantile_losses(y, q, t) for t, q in quantiles.items()], axis=0)
    assert wis == pytest.approx(2 * pinball)
    with pytest.raises(ValueError, match="at least one level"):
        metrics.weighted_interval_scores(y, median, {})


def test_rel_mae_and_geometric_mean():
    # MAE 1.5 against the benchmark's mean(4, 4)
    assert metrics.rel_mae([10, 20], [11, 18], [14, 24]) == pytest.approx(0.375)
    assert metrics.geometric_mean([1, 4, 16]) == pytest.approx(4)
    with pytest.raises(ValueError, match=r"positive finite values; got \[0.0\]"):
        metrics.geometric_mean([1, 0])


def test_inputs_are_checked():
    with pytest.raises(ValueError, match=r"equal lengths; got \[2, 3\]"):
        metrics.mae([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="at least season \\+ 1 = 13 values; got 5"):
        metrics.mase(Y, Y_HAT, Y_TRAIN)
