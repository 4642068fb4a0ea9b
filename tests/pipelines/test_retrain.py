"""Retraining: new data promotes a no-worse challenger; no data, a failure or a worse one do not."""

from __future__ import annotations

import hashlib
import time

import httpx
import pytest
from mlflow import MlflowClient

from forecasting.data import ObservationStore
from pipelines.config import Experiment
from pipelines.ingest import ingest
from pipelines.retrain import RetrainBusy, judge, retrain, retrain_lock
from pipelines.tracking import CHALLENGER, CHAMPION, configure, log_training, tracking_uri
from pipelines.train import train
from tests.forecasting.data.cbp_files import aor_file
from tests.service.conftest import Server

RETRAIN_TINY = """
name: retrain-tiny
mlflow_experiment: retrain-tiny
series: [southwest/usbp, southwest/usbp/sector=yuma]
models:
  - name: seasonal_naive
  - name: naive
  - name: ets
ensemble_top_k: 0
train_start: 2016-01
backtest: {first_cutoff: 2022-11, step_months: 6, h: 12}
level: [80, 95]
max_h: 24
"""


def digest(folder) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def served_version(server, wanted: str, timeout: float = 90) -> str:
    """The version the service answers with, once it is ``wanted`` (or the timeout passes)."""
    deadline = time.monotonic() + timeout
    while True:
        version = httpx.get(f"{server.url}/health", timeout=5).json()["model"]["version"]
        if version == wanted or time.monotonic() > deadline:
            return version
        time.sleep(0.5)


def alias(home, name: str) -> str:
    client = MlflowClient(tracking_uri(home))
    return str(client.get_model_version_by_alias("border-encounters", name).version)


def champion(home) -> str:
    return alias(home, CHAMPION)


@pytest.mark.slow
def test_retrain_lifecycle(mlflow_home, tmp_path, ohss_file, sbo_file):
    home = mlflow_home
    experiment_file = tmp_path / "retrain-tiny.yaml"
    experiment_file.write_text(RETRAIN_TINY)
    store = ObservationStore(home)
    ingest(store, [str(ohss_file)])
    exp, text = Experiment.load(experiment_file)
    first = log_training(train(exp, store, workers=1), text, home)
    assert first.promoted and champion(home) == "1"
    server = Server(home, tmp_path / "server", workers=1, ENCOUNTERS_POLL_SECONDS="1")
    try:
        _lifecycle(home, tmp_path, store, server, sbo_file)
    finally:
        server.stop()


def _lifecycle(home, tmp_path, store, server, sbo_file):
    assert served_version(server, "1") == "1"

    # The CBP release arrives: a challenger trained on it is no worse, so it becomes champion.
    decision = retrain(home, [str(sbo_file)], workers=1)
    assert decision.outcome == "promoted", decision.reasons
    assert (str(decision.champion_version), decision.challenger_version) == ("1", "2")
    assert champion(home) == "2"
    assert alias(home, CHALLENGER) == "2"
    assert set(decision.scorecard["series"]) == {"southwest/usbp", "southwest/usbp/sector=yuma"}
    # The running service picks up the promotion without a restart.
    assert served_version(server, "2") == "2"
    answer = httpx.get(f"{server.url}/v1/forecast", params={"series": "southwest/usbp", "h": 3})
    assert answer.status_code == 200 and answer.json()["model_version"] == "2"

    # Nothing new: nothing trained, nothing moved.
    again = retrain(home, [str(sbo_file)], workers=1)
    assert again.outcome == "up-to-date" and champion(home) == "2"
    client = configure(home)
    assert len(client.search_model_versions("name='border-encounters'")) == 2

    # A failure mid-training (every series' baseline fails) leaves the store and the alias.
    before = digest(store.root)
    broken = tmp_path / "broken.yaml"
    bad_ets = "{name: ets, params: {trend: sideways}}"
    broken.write_text(
        RETRAIN_TINY.split("models:")[0]
        + f"baseline: {bad_ets}\nmodels: [{bad_ets}]\n"
        + RETRAIN_TINY.split("ensemble_top_k: 0\n")[1]
    )
    new_release = aor_file(tmp_path)
    with pytest.raises(RuntimeError, match="every series failed"):
        retrain(home, [str(new_release)], experiment_path=str(broken), workers=1)
    assert digest(store.root) == before
    assert champion(home) == "2"

    # A deliberately worse challenger (seasonal naive only) is not promoted, and says why.
    worse = tmp_path / "worse.yaml"
    worse.write_text(RETRAIN_TINY.replace("  - name: naive\n  - name: ets\n", ""))
    rejected = retrain(home, [str(new_release)], experiment_path=str(worse), workers=1)
    assert rejected.outcome == "rejected"
    # The rejected version is the challenger now: the one the last retrain evaluated.
    assert alias(home, CHALLENGER) == rejected.challenger_version
    assert any("worse" in r for r in rejected.reasons)
    assert champion(home) == "2"
    runs = client.search_runs(
        [client.get_experiment_by_name("retrain-tiny").experiment_id],
        filter_string="tags.kind = 'retrain-decision' and tags.decision = 'rejected'",
    )
    assert len(runs) == 1 and "worse" in runs[0].data.tags["reasons"]
    # Neither the failure nor the rejection reached the API.
    assert served_version(server, "2", timeout=3) == "2"


def test_a_second_retrain_waits_for_the_lock(tmp_path):
    with retrain_lock(tmp_path), pytest.raises(RetrainBusy, match="another retrain is running"):
        retrain(tmp_path, [])


def test_judge_promotes_only_when_no_worse_overall_and_per_series():
    import pandas as pd

    card = pd.DataFrame(
        {"series": ["a", "b"], "champion_rel_mae": [0.8, 0.9], "challenger_rel_mae": [0.7, 0.95]}
    )
    card["ratio"] = card["challenger_rel_mae"] / card["champion_rel_mae"]
    assert judge(card, margin=0.10)[0]
    ok, reasons = judge(card, margin=0.05)
    assert not ok and any(r.startswith("b: challenger 0.950") for r in reasons)
    worse = card.assign(challenger_rel_mae=[0.9, 0.95])
    worse["ratio"] = worse["challenger_rel_mae"] / worse["champion_rel_mae"]
    ok, reasons = judge(worse, margin=0.5)
    assert not ok and "worse overall" in reasons[-1]
