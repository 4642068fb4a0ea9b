"""``encounters up``'s second half: the full experiment trained behind a provisional champion.

It runs as its own process (``python -m pipelines.background EXPERIMENT``), started by ``up``
beside the server. Without a champion (``--stand-in``) it first registers the quick stand-in
(``experiments/quick.yaml`` on the experiment's series), which the server's poll picks up; the
server's workers start meanwhile, so the two overlap. Then the fits take both cores for minutes
while the server answers from the stand-in, and the full champion goes through
:func:`pipelines.retrain.retrain` (the same gate a scheduled retrain uses); the server's poll of
the alias swaps it in. Progress (series done and
total, elapsed, estimated remaining) is written to ``$ENCOUNTERS_HOME/training.json``, which
``/health`` and the page read, and logged as one line per series.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
import tempfile
import time
import urllib.request
import warnings
from pathlib import Path

import yaml

from forecasting.data import ObservationStore
from forecasting.errors import EncountersWarning
from forecasting.home import (
    TRAINING_ENDED,
    TRAINING_PROGRESS,
    encounters_home,
    read_training_progress,
)
from pipelines.config import QUICK_EXPERIMENT, Experiment
from pipelines.retrain import RetrainBusy, retrain
from pipelines.train import train

log = logging.getLogger("encounters")


def _stamp(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="seconds")


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def settled(home: Path, experiment: str, fingerprint: str) -> bool:
    """Whether a background training of ``experiment`` on this data vintage already ended."""
    record = read_training_progress(home) or {}
    return (
        record.get("experiment") == experiment
        and record.get("data_fingerprint") == fingerprint
        and record.get("state") in TRAINING_ENDED
        and record.get("state") != "failed"
    )


class Progress:
    """Writes ``training.json`` atomically at each step and logs it."""

    def __init__(self, home: Path, experiment: str, fingerprint: str):
        self.path = home / TRAINING_PROGRESS
        self.started = time.time()
        self.record: dict = {
            "experiment": experiment,
            "data_fingerprint": fingerprint,
            "pid": os.getpid(),
            "state": "starting",
            "series_done": 0,
            "series_total": None,
            "started_at": _stamp(self.started),
            "elapsed_seconds": 0.0,
            "remaining_seconds": None,
            "message": f"preparing the {experiment} experiment",
        }
        self._write()

    def _write(self) -> None:
        now = time.time()
        self.record["updated_at"] = _stamp(now)
        self.record["elapsed_seconds"] = round(now - self.started, 1)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        with os.fdopen(fd, "w") as fh:
            json.dump(self.record, fh, indent=2)
        os.replace(tmp, self.path)

    def update(self, message: str, restart: bool = False) -> None:
        """A new step; ``restart``: elapsed time and the estimate count from now."""
        if restart:
            self.started = time.time()
            self.record["started_at"] = _stamp(self.started)
        self.record["message"] = message
        self._write()

    def __call__(self, done: int, total: int, key: str) -> None:
        elapsed = time.time() - self.started
        # Series take alike on average; the estimate covers the fits, not the logging after.
        remaining = elapsed / done * (total - done)
        finished = done == total
        self.record.update(
            state="logging" if finished else "training",
            series_done=done,
            series_total=total,
            remaining_seconds=round(remaining, 1),
            message=(
                "logging to MLflow and comparing with the champion"
                if finished
                else f"trained {key}"
            ),
        )
        self._write()
        log.info(
            "full training: %d/%d series, %s elapsed, about %s left%s",
            done,
            total,
            _duration(elapsed),
            _duration(remaining),
            "; now logging and gating" if finished else "",
        )

    def finish(self, state: str, message: str, version: str | None = None) -> None:
        self.record.update(state=state, message=message, remaining_seconds=0.0, version=version)
        self._write()
        log.info(
            "full training %s after %s: %s", state, _duration(time.time() - self.started), message
        )


#: How long the training waits for the server to answer before it starts anyway.
SERVER_WAIT_SECONDS = 300
#: What the stand-in takes from the experiment it stands in for: the same series, served the
#: same way (levels, horizon, hierarchy), registered under the same name.
SERVED_AS = (
    "series",
    "mlflow_experiment",
    "registered_model",
    "train_start",
    "min_history_months",
    "level",
    "max_h",
    "hierarchy",
)


def stand_in(experiment: Experiment) -> tuple[Experiment, str]:
    """The quick experiment (``experiments/quick.yaml``) on ``experiment``'s series, and its
    YAML as logged to MLflow."""
    quick, _ = Experiment.load(QUICK_EXPERIMENT)
    merged = quick.model_copy(update={k: getattr(experiment, k) for k in SERVED_AS})
    text = (
        f"# {QUICK_EXPERIMENT.name}, standing in for the experiment {experiment.name!r}: its "
        f"{', '.join(SERVED_AS)}\n"
    ) + yaml.safe_dump(merged.model_dump(mode="json"), sort_keys=False)
    return merged, text


def run(experiment_path: str, home: Path, progress: Progress) -> str:
    """Train ``experiment_path`` as a challenger and gate it; the final state."""
    experiment, _ = Experiment.load(experiment_path)
    progress.update(f"training {experiment.name}", restart=True)
    try:
        decision = retrain(
            home,
            [],
            experiment_path,
            model_name=experiment.registered_model,
            progress=progress,
        )
    except RetrainBusy as exc:
        progress.finish("failed", str(exc))
        return "failed"
    except Exception as exc:
        progress.finish("failed", f"{type(exc).__name__}: {exc}")
        raise
    if decision.outcome in ("promoted", "first-champion"):
        message = f"version {decision.challenger_version} is the champion: " + "; ".join(
            decision.reasons
        )
        progress.finish("promoted", message, decision.challenger_version)
        return "promoted"
    message = "; ".join(decision.reasons)
    if decision.outcome == "rejected":
        message = (
            f"version {decision.challenger_version} did not pass the gate, the champion stays: "
            + message
        )
    progress.finish(decision.outcome, message, decision.challenger_version)
    return decision.outcome


def wait_until_serving(url: str, timeout: float = SERVER_WAIT_SECONDS) -> None:
    """Until ``url`` (the server's ``/health``) answers 200: the fits would otherwise take the
    cores the server's workers need to load the stand-in, and delay its first answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    log.warning("%s did not answer in %.0fs; training anyway", url, timeout)


def register_stand_in(experiment: Experiment, home: Path, progress: Progress) -> None:
    """Train and register the stand-in as champion, unless a champion appeared meanwhile."""
    from pipelines.tracking import champion_version, configure, log_training

    quick, text = stand_in(experiment)
    training = train(quick, ObservationStore(home))
    if champion_version(configure(home), experiment.registered_model) is not None:
        log.info("a champion exists already; the stand-in is not registered")
        return
    logged = log_training(training, text, home, promote=True)
    progress.update(f"serving the stand-in, version {logged.model_version}")
    log.info(
        "registered %s version %s, the quick stand-in (%s): the server loads it within seconds",
        logged.model_name,
        logged.model_version,
        training.pooled_choice,
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m pipelines.background EXPERIMENT [--stand-in] [--wait-for HEALTH_URL]``."""
    parser = argparse.ArgumentParser(prog="python -m pipelines.background")
    parser.add_argument("experiment")
    parser.add_argument("--stand-in", action="store_true", help="register the stand-in first")
    parser.add_argument("--wait-for", metavar="URL", help="start the fits once URL answers 200")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # One line per kind of warning: logging many runs repeats the same few.
    warnings.filterwarnings("once", category=EncountersWarning)
    home = encounters_home()
    experiment, _ = Experiment.load(args.experiment)
    progress = Progress(home, experiment.name, ObservationStore(home).fingerprint())
    if args.stand_in:
        progress.update("training the quick stand-in")
        register_stand_in(experiment, home, progress)
    if args.wait_for:
        wait_until_serving(args.wait_for)
    state = run(args.experiment, home, progress)
    return 1 if state == "failed" else 0


if __name__ == "__main__":
    sys.exit(main())
