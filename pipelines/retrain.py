"""Scheduled retraining: ingest, train a challenger, promote it only if it is at least as good.

Order matters for failure safety: if any step fails, the releases this run added to the store (its
ingest, or the seeding of an empty store) are taken out again, and only those: another writer's
ingest meanwhile stays. The ``champion`` alias moves last, after the decision is recorded in MLflow.
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import pandas as pd

from forecasting.backtest import backtest
from forecasting.bundle import BundleModel
from forecasting.data import ObservationStore
from forecasting.errors import DataError
from forecasting.metrics import geometric_mean
from forecasting.selection import geometric_rel_mae
from pipelines.config import DEFAULT_EXPERIMENT, DEFAULT_MARGIN, Experiment
from pipelines.executors import run_tasks
from pipelines.ingest import ingest
from pipelines.tracking import (
    CHALLENGER,
    CHAMPION,
    PROVISIONAL,
    champion_version,
    configure,
    experiment_id,
    log_training,
)
from pipelines.train import SeriesResult, train

log = logging.getLogger(__name__)
LOCK_FILE = "retrain.lock"


class RetrainBusy(RuntimeError):
    """Another retrain holds the lock."""


@dataclass
class Decision:
    """What a retrain decided and why."""

    outcome: str  # "up-to-date", "first-champion", "promoted" or "rejected"
    reasons: list[str]
    champion_version: str | None = None
    challenger_version: str | None = None
    scorecard: pd.DataFrame = field(default_factory=pd.DataFrame)


@contextmanager
def retrain_lock(home: Path) -> Iterator[None]:
    """An exclusive, non-blocking lock in the data home: one retrain at a time."""
    home.mkdir(parents=True, exist_ok=True)
    with (home / LOCK_FILE).open("a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            raise RetrainBusy(
                f"another retrain is running (pid {holder}); try again later"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        try:
            yield
        finally:
            fh.truncate(0)
            fcntl.flock(fh, fcntl.LOCK_UN)


def _champion_experiment(version) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(
            run_id=version.run_id, artifact_path="experiment.yaml", dst_path=tmp
        )
        return Path(path).read_text()


def _champion_score(args: tuple) -> float:
    """The champion's model for one series, re-backtested on the challenger's origins."""
    model, result, exp = args
    frame = backtest(
        model.clone,
        result.y,
        result.X if model.regressors_ else None,
        result.cutoffs,
        exp.backtest.h,
        exp.level,
    )
    baseline = next(c for c in result.candidates if c.spec == exp.baseline)
    return geometric_rel_mae(frame, baseline.backtest)


def scorecard(champion_bundle, results: list[SeriesResult], exp: Experiment, workers: int):
    """Per series: the champion's and the challenger's relMAE on the same, newest origins."""
    shared = [r for r in results if r.key in champion_bundle.models]
    args = [(champion_bundle.series_model(r.key).model, r, exp) for r in shared]
    scores = run_tasks(_champion_score, args, "local", workers, label=lambda a: a[1].key)
    rows = []
    for result, score in zip(shared, scores, strict=True):
        if isinstance(score, BaseException):
            score = float("nan")
            log.warning("champion model of %s could not be re-backtested", result.key)
        rows.append(
            {
                "series": result.key,
                "champion_model": champion_bundle.series_model(result.key).model_name,
                "champion_rel_mae": score,
                "challenger_model": result.chosen.spec.label,
                "challenger_rel_mae": result.chosen.metrics["rel_mae"],
            }
        )
    card = pd.DataFrame(rows)
    card["ratio"] = card["challenger_rel_mae"] / card["champion_rel_mae"]
    return card


def judge(card: pd.DataFrame, margin: float) -> tuple[bool, list[str]]:
    """Promote when no worse overall and no series worse by more than ``margin``."""
    valid = card.dropna(subset=["champion_rel_mae", "challenger_rel_mae"])
    if valid.empty:
        return True, ["no series in common with the champion to compare on"]
    champ = geometric_mean(valid["champion_rel_mae"].to_numpy())
    chall = geometric_mean(valid["challenger_rel_mae"].to_numpy())
    reasons = [
        f"overall relMAE (geometric mean over {len(valid)} series): challenger "
        f"{chall:.3f} vs champion {champ:.3f}"
    ]
    ok = bool(chall <= champ * (1 + 1e-9))
    if not ok:
        reasons.append("the challenger is worse overall")
    worse = valid[valid["ratio"] > 1 + margin]
    for row in worse.itertuples():
        reasons.append(
            f"{row.series}: challenger {row.challenger_rel_mae:.3f} vs champion "
            f"{row.champion_rel_mae:.3f}, worse by more than {margin:.0%}"
        )
    return ok and worse.empty, reasons


def _record(decision: Decision, exp: Experiment, home: Path) -> None:
    client = configure(home)
    with mlflow.start_run(
        experiment_id=experiment_id(client, exp.mlflow_experiment, home),
        run_name=f"retrain decision: {decision.outcome}",
    ):
        mlflow.set_tags(
            {
                "kind": "retrain-decision",
                "decision": decision.outcome,
                "champion_version": str(decision.champion_version),
                "challenger_version": str(decision.challenger_version),
                "reasons": "; ".join(decision.reasons)[:4000],
            }
        )
        mlflow.log_text("\n".join(decision.reasons) + "\n", "reasons.txt")
        if not decision.scorecard.empty:
            mlflow.log_text(decision.scorecard.to_csv(index=False), "scorecard.csv")
            for column in ("champion_rel_mae", "challenger_rel_mae"):
                values = decision.scorecard[column].dropna().to_numpy()
                if len(values):
                    mlflow.log_metric(f"overall_{column}", geometric_mean(values))


def retrain(
    home: Path,
    sources: list[str],
    experiment_path: str | None = None,
    margin: float = DEFAULT_MARGIN,
    model_name: str = "border-encounters",
    executor: str = "local",
    workers: int = 2,
    progress: Callable[[int, int, str], None] | None = None,
) -> Decision:
    """Ingest ``sources``, then train and gate a challenger unless the data is unchanged (and
    the champion is not a provisional stand-in).

    ``progress`` is told ``(series done, series total, series key)`` as the training goes.
    """
    with retrain_lock(home):
        store = ObservationStore(home)
        written: list[str] = []
        try:
            return _retrain(
                home,
                store,
                written,
                sources,
                experiment_path,
                margin,
                model_name,
                executor,
                workers,
                progress,
            )
        except BaseException:
            store.remove(written)
            raise


def _retrain(
    home, store, written, sources, experiment_path, margin, model_name, executor, workers, progress
):
    if sources:
        written.extend(r.sha256 for r in ingest(store, sources) if r.status == "added")
    else:
        written.extend(store.seed())
    client = configure(home)
    champion = champion_version(client, model_name)
    fingerprint = store.fingerprint()
    if (
        champion is not None
        and champion.tags.get("data_fingerprint") == fingerprint
        and champion.tags.get(PROVISIONAL) != "true"
    ):
        return Decision(
            "up-to-date",
            [
                f"the champion (version {champion.version}) was trained "
                f"on this data vintage ({fingerprint})"
            ],
            champion.version,
        )
    if experiment_path:
        text = Path(experiment_path).read_text()
    elif champion is not None:
        text = _champion_experiment(champion)
    else:
        text = DEFAULT_EXPERIMENT.read_text()
    exp = Experiment.from_text(text, experiment_path or "the champion's experiment")
    if exp.registered_model != model_name:
        raise DataError(f"experiment registers {exp.registered_model!r}, not {model_name!r}")
    training = train(exp, store, None, executor, workers, progress=progress)
    logged = log_training(training, text, home, promote=False)
    client.set_registered_model_alias(model_name, CHALLENGER, logged.model_version)
    if champion is None:
        decision = Decision("first-champion", ["there was no champion"], None, logged.model_version)
        promote = True
    else:
        model = mlflow.pyfunc.load_model(f"models:/{model_name}@{CHAMPION}")
        bundle = model.unwrap_python_model()
        if not isinstance(bundle, BundleModel):
            raise DataError(f"the champion of {model_name} is not a border-encounters bundle")
        card = scorecard(bundle.bundle, training.results, exp, workers)
        promote, reasons = judge(card, margin)
        decision = Decision(
            "promoted" if promote else "rejected",
            reasons,
            champion.version,
            logged.model_version,
            card,
        )
    _record(decision, exp, home)
    client.set_model_version_tag(
        model_name, logged.model_version, "retrain_decision", decision.outcome
    )
    if promote:
        client.set_registered_model_alias(model_name, CHAMPION, logged.model_version)
    log.info("retrain: %s (%s)", decision.outcome, "; ".join(decision.reasons))
    return decision
