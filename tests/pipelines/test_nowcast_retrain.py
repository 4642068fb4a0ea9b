"""New data replaces nowcasts: a CBP area-of-responsibility release with the sectors through the
total's month turns the champion's sector nowcasts into observations at the next retrain."""

from __future__ import annotations

import mlflow.pyfunc
import pandas as pd
import pytest

from forecasting.data import ObservationStore
from forecasting.data.readers import AOR_HEADER
from forecasting.frame import series_history
from pipelines.config import Experiment
from pipelines.retrain import retrain
from pipelines.tracking import log_training, tracking_uri
from pipelines.train import train
from tests.forecasting.data.cbp_files import write_csv

TOTAL = "southwest/usbp"
SECTORS = {
    "big-bend": "Big Bend Sector",
    "del-rio": "Del Rio Sector",
    "el-centro": "El Centro Sector",
    "el-paso": "El Paso Sector",
    "laredo": "Laredo Sector",
    "rio-grande-valley": "Rio Grande Valley Sector",
    "san-diego": "San Diego Sector",
    "tucson": "Tucson Sector",
    "yuma": "Yuma Sector",
}
YUMA = "southwest/usbp/sector=yuma"
EXPERIMENT = """
name: nowcast-tiny
mlflow_experiment: nowcast-tiny
series: [southwest/usbp, southwest/usbp/sector=yuma, southwest/usbp/sector=tucson]
models: [{name: seasonal_naive}, {name: naive}]
ensemble_top_k: 0
train_start: 2016-01
backtest: {first_cutoff: 2023-05, step_months: 6, h: 6}
level: [80, 95]
max_h: 6
"""


def sector_release(folder, panel: pd.DataFrame):
    """Every sector's Border Patrol apprehensions for 2024-12..2025-08 in the aor layout, split
    from the total by the sectors' 2024-11 shares so that they add up to it exactly."""
    total = series_history(panel, TOTAL)
    last = {slug: series_history(panel, f"southwest/usbp/sector={slug}") for slug in SECTORS}
    shares = pd.Series({slug: y.iloc[-1] for slug, y in last.items()})
    shares = shares / shares.sum()
    rows = []
    for month in pd.date_range("2024-12-01", "2025-08-01", freq="MS"):
        counts = (shares * total[month]).round().astype(int)
        counts["rio-grande-valley"] += int(total[month]) - int(counts.sum())
        fiscal = month.year + (month.month >= 10)
        for slug, name in SECTORS.items():
            rows.append(
                (
                    f"{fiscal} (FYTD)",
                    "FYTD",
                    f"{month:%b}".upper(),
                    "U.S. Border Patrol",
                    "Southwest Land Border",
                    name,
                    slug[:3].upper(),
                    "Single Adults",
                    "MEXICO",
                    "Title 8",
                    "Apprehensions",
                    str(counts[slug]),
                )
            )
    return write_csv(folder / "nationwide-encounters-fy25-aor.csv", AOR_HEADER, rows)


def champion_forecast(home, key: str) -> pd.DataFrame:
    mlflow.set_tracking_uri(tracking_uri(home))
    model = mlflow.pyfunc.load_model("models:/border-encounters@champion")
    return model.predict(pd.DataFrame({"series": [key], "h": [3]}))


@pytest.mark.slow
def test_a_sector_release_turns_nowcasts_into_observations(mlflow_home, tmp_path):
    home = mlflow_home
    store = ObservationStore(home)
    store.seed()
    path = tmp_path / "nowcast-tiny.yaml"
    path.write_text(EXPERIMENT)
    exp, text = Experiment.load(path)
    assert log_training(train(exp, store, workers=1), text, home).promoted
    before = champion_forecast(home, YUMA)
    assert list(before["kind"]) == ["nowcast"] * 9 + ["forecast"] * 3
    assert before["ds"].iloc[0] == "2024-12-01"

    release = sector_release(tmp_path, store.panel())
    decision = retrain(home, [str(release)], experiment_path=str(path), workers=1)
    assert decision.outcome == "promoted", decision.reasons
    after = champion_forecast(home, YUMA)
    assert list(after["kind"]) == ["forecast"] * 3
    assert after["ds"].iloc[0] == "2025-09-01"
    observed = series_history(store.panel(), YUMA)
    assert observed.index[-1] == pd.Timestamp("2025-08-01")
