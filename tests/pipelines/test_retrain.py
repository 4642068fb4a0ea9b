"""Retraining: new data promotes a no-worse challenger; no data, a failure or a worse one do not."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import time
from pathlib import Path

import httpx
import pytest
from mlflow import MlflowClient

from forecasting.data import ObservationStore
from pipelines.config import Experiment
from pipelines.ingest import ingest
from pipelines.retrain import RetrainBusy, judge, retrain, retrain_lock
from pipelines.tracking import CHALLENGER, CHAMPION, configure, log_training, tracking_uri
from pipelines.train import train
from tests.forecasting.data.cbp_files import aor_file, revised_copy
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
    broken = broken_experiment(tmp_path)
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


def broken_experiment(folder: Path) -> Path:
    """RETRAIN_TINY with every model (the baseline too) one that cannot fit."""
    path = folder / "broken.yaml"
    bad_ets = "{name: ets, params: {trend: sideways}}"
    path.write_text(
        RETRAIN_TINY.split("models:")[0]
        + f"baseline: {bad_ets}\nmodels: [{bad_ets}]\n"
        + RETRAIN_TINY.split("ensemble_top_k: 0\n")[1]
    )
    return path


def _failing_retrain(home: Path, source: Path, experiment: Path) -> None:
    try:
        retrain(home, [str(source)], experiment_path=str(experiment), workers=1)
    except RuntimeError as exc:
        if "every series failed" in str(exc):
            os._exit(0)
        raise
    os._exit(3)  # it was meant to fail


def ingest_during_failing_retrain(home: Path, folder: Path, other: Path) -> tuple[bool, list[str]]:
    """A retrain that ingests a release and then fails, with ``other`` ingested by this process
    between the two (on a store seeded from the snapshot); whether the ingest landed while the
    retrain ran, and the names of the releases the store holds beside the snapshot's."""
    store = ObservationStore(home)
    seeded = set(store.seed())
    ctx = multiprocessing.get_context("fork")
    release = aor_file(folder)
    proc = ctx.Process(target=_failing_retrain, args=(home, release, broken_experiment(folder)))
    proc.start()
    deadline = time.monotonic() + 60
    while release.name not in _names(store):
        assert time.monotonic() < deadline and proc.is_alive(), "the retrain never ingested"
        time.sleep(0.01)
    ingest(store, [str(other)])
    during = proc.is_alive()
    proc.join(300)
    assert proc.exitcode == 0, f"the retrain did not fail as meant (exit {proc.exitcode})"
    store.verify()
    return during, _names(store, seeded)


def _names(store: ObservationStore, besides: set[str] = frozenset()) -> list[str]:
    held = [] if store.is_empty else store.releases()
    return [r["name"] for r in held if r["sha256"] not in besides]


def test_an_ingest_during_a_failing_retrain_is_kept(mlflow_home, tmp_path, sbo_file):
    # The snapshot holds the official file: a revised re-publication of it is the new release.
    revised = revised_copy(sbo_file, tmp_path / "revised")
    during, names = ingest_during_failing_retrain(mlflow_home, tmp_path, revised)
    assert during, "the ingest finished after the retrain: the test proves nothing"
    # The retrain's own release is rolled back; the other writer's stays.
    assert names == [revised.name]


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
