"""Prophet on real series that collapsed: its forecasts must stay near where the series is."""

from __future__ import annotations

import importlib.util
import pickle
import subprocess
import sys

import pytest

from forecasting.backtest import carry_forward
from forecasting.models import Prophet
from tests.forecasting.fitted_series import USBP, VENEZUELA, series


@pytest.mark.parametrize("key", [USBP, VENEZUELA])
def test_forecasts_follow_a_series_after_its_collapse(key):
    # Both series fell tenfold and more in 2023-2025; a linear trend on counts forecast zeros
    # from there. Within a factor of 5 leaves room for Venezuela's wild seasonal swings.
    y, X = series(key)
    X = X.loc[:, (X != 0).any()]
    model = Prophet().fit(y, X)
    mean = model.predict(12, carry_forward(X, 12))["mean"]
    last = y.iloc[-1]
    assert (mean > last / 5).all() and (mean < 5 * last).all(), (last, mean.round().tolist())
    effects = model.effects()
    assert effects["effect"].dropna().gt(-100).all()


@pytest.mark.skipif(
    importlib.util.find_spec("plotly") is not None, reason="plotly is installed: no notice to drop"
)
def test_loading_a_fitted_model_logs_no_plotly_error(tmp_path):
    # A service loading a bundle unpickles Prophet; its "Importing plotly failed" ERROR alarmed
    # operators at every start.
    y, _ = series(USBP)
    path = tmp_path / "prophet.pkl"
    path.write_bytes(pickle.dumps(Prophet(use_regressors=False).fit(y.iloc[-60:])))
    load = f"import pickle, pathlib; pickle.loads(pathlib.Path({str(path)!r}).read_bytes())"
    run = subprocess.run([sys.executable, "-c", load], capture_output=True, text=True, check=True)
    assert "plotly" not in run.stderr, run.stderr
