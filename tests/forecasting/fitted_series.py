"""Models fitted once per test session for the counterfactual, decomposition and command tests.

Real series from the embedded snapshot, from 2015 on, with one SARIMA order and every
non-constant regressor kept (``min_t=0``): a few seconds per fit instead of a minute for the
default order search. Columns that move but stay tiny over the window (decades-old decays) are
left out: their coefficients are unidentified there. All-zero columns stay, as in training (the
model drops them as constant).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from functools import cache
from unittest import mock

import pandas as pd

from forecasting.data import ObservationStore
from forecasting.frame import series_history
from forecasting.home import ENV_HOME
from forecasting.interventions import ENV_CATALOG, Catalog, design_matrix, load_catalog
from forecasting.models import SARIMAX, UCM, Forecaster

USBP = "southwest/usbp"
VENEZUELA = "southwest/usbp/citizenship=venezuela"
START = "2015-01"
ORDERS = (((0, 1, 1), (0, 1, 1, 12)),)
#: Non-zero columns whose largest value over the window is below this are left out.
MIN_COLUMN_MAX = 0.01


@dataclass(frozen=True)
class Fitted:
    model: Forecaster
    y: pd.Series
    X: pd.DataFrame
    catalog: Catalog
    key: str


def fast_sarimax() -> SARIMAX:
    return SARIMAX(orders=ORDERS, min_t=0)


@cache
def default_catalog() -> Catalog:
    """The default catalog alone, whatever the environment names."""
    env = {k: v for k, v in os.environ.items() if k != ENV_CATALOG}
    with tempfile.TemporaryDirectory(prefix="encounters-home-") as home:
        env[ENV_HOME] = home
        with mock.patch.dict(os.environ, env, clear=True):
            return load_catalog()


@cache
def series(key: str) -> tuple[pd.Series, pd.DataFrame]:
    """The observed series from 2015 and its design matrix."""
    with tempfile.TemporaryDirectory(prefix="encounters-store-") as store:
        panel = ObservationStore(store).panel()
    y = series_history(panel, key, START)
    X = design_matrix(default_catalog(), key, y.index[0], y.index[-1])
    peak = X.abs().max()
    return y, X.loc[:, (peak == 0) | (peak >= MIN_COLUMN_MAX)]


def _fit(key: str, model: Forecaster) -> Fitted:
    y, X = series(key)
    return Fitted(model.fit(y, X), y, X, default_catalog(), key)


@cache
def sarimax(key: str) -> Fitted:
    return _fit(key, fast_sarimax())


@cache
def ucm(key: str) -> Fitted:
    return _fit(key, UCM(min_t=0))
