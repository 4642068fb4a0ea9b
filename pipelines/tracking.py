"""MLflow: where runs go, how a training is logged, and the registered model's aliases.

Embedded default: a SQLite store at ``$ENCOUNTERS_HOME/mlflow.db`` with artifacts under
``$ENCOUNTERS_HOME/mlartifacts``, so nothing has to be started. ``MLFLOW_TRACKING_URI`` sends the
same runs to an MLflow server instead.
"""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.data.pandas_dataset import PandasDataset
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.types.schema import ColSpec, ParamSchema, ParamSpec, Schema

import forecasting
from forecasting.bundle import BUNDLE_FILE, SCENARIO, BundleModel, future_regressors
from forecasting.data import ObservationStore
from forecasting.frame import DS, SERIES, UNIQUE_ID, H, Y, forecast_columns
from forecasting.hierarchy import KIND
from forecasting.plots import error_by_horizon, fan_chart
from pipelines.train import CALIBRATED_SCORES, CandidateResult, SeriesResult, Training

log = logging.getLogger(__name__)
CHAMPION = "champion"
#: The version a retrain evaluates against the champion.
CHALLENGER = "challenger"
#: Version tag of a stand-in (``provisional`` experiment): a retrain replaces it on any data.
PROVISIONAL = "provisional"
BUNDLE_ARTIFACT = "bundle"


def tracking_uri(home: Path) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{home / 'mlflow.db'}"


def configure(home: Path) -> MlflowClient:
    """Point MLflow at the configured store (embedded SQLite by default)."""
    home.mkdir(parents=True, exist_ok=True)
    uri = tracking_uri(home)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(uri, uri)


def experiment_id(client: MlflowClient, name: str, home: Path) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    # With the embedded store the artifacts live in the data home; a server picks its own root.
    # (Not judged by MLFLOW_TRACKING_URI: mlflow.set_tracking_uri sets that variable itself.)
    embedded = client.tracking_uri == f"sqlite:///{home / 'mlflow.db'}"
    location = (home / "mlartifacts").as_uri() if embedded else None
    return client.create_experiment(name, artifact_location=location)


def code_version() -> str:
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=here,
            check=True,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = "unknown"
    return f"{forecasting.__version__}+{sha}"


def champion_version(client: MlflowClient, model_name: str):
    """The model version the champion alias names, or ``None``."""
    try:
        return client.get_model_version_by_alias(model_name, CHAMPION)
    except MlflowException:
        return None


def runs_url(uri: str, experiment: str, host: str = "127.0.0.1", port: int = 5000) -> str:
    """Where the MLflow UI shows ``experiment``'s runs in its model-training view.

    MLflow 3.17's UI picks the view from the ``workflowType`` URL parameter, else from the
    browser's stored choice, else the GenAI overview (traces, tokens): an experiment tag does
    not change it. Without the experiment in the store, the UI's home page.
    """
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    base = f"http://{shown}:{port}/"
    found = MlflowClient(uri, uri).get_experiment_by_name(experiment)
    if found is None:
        return base
    return f"{base}#/experiments/{found.experiment_id}/runs?workflowType=machine_learning"


@dataclass(frozen=True)
class LoggedTraining:
    parent_run_id: str
    model_name: str
    model_version: str
    promoted: bool


def _params(spec_params: dict) -> dict[str, str]:
    return {f"param.{k}": str(v)[:500] for k, v in spec_params.items()}


def _write(folder: Path, name: str, data: bytes | str) -> None:
    path = folder / name
    if isinstance(data, str):
        path.write_text(data)
    else:
        path.write_bytes(data)


def _dataset(training: Training, home: Path) -> PandasDataset:
    """The training panel (``unique_id, ds, y`` of every series trained) as an MLflow dataset
    whose digest is the store's fingerprint: runs on the same data vintage share it."""
    panel = pd.concat(
        [
            pd.DataFrame({UNIQUE_ID: r.key, DS: r.y.index, Y: r.y.to_numpy()})
            for r in training.results
        ],
        ignore_index=True,
    )
    return mlflow.data.from_pandas(
        panel,
        source=str(ObservationStore(home).root),
        targets=Y,
        name=f"{training.experiment.name} panel {training.vintage['data_newest_month']}",
        digest=training.vintage["data_fingerprint"],
    )


def _log_by_horizon(run_id: str, cand: CandidateResult, level: list[int]) -> None:
    """The per-horizon backtest scores as one metric each with ``step`` = months ahead, so the
    UI charts error and coverage against horizon across candidates."""
    by_step = cand.by_step
    columns = {"mase_by_h": "mase", "smape_by_h": "smape"}
    for lv in level:
        columns[f"coverage_{lv}_model_by_h"] = f"coverage_{lv}"
        for name in CALIBRATED_SCORES:
            columns[f"{name}_{lv}_by_h"] = f"{name}_{lv}_calibrated"
    columns["wis_by_h"] = "wis_calibrated"
    now = int(time.time() * 1000)
    metrics = [
        Metric(key, float(value), now, int(h))
        for key, column in columns.items()
        if column in by_step
        for h, value in by_step[column].items()
        if pd.notna(value)
    ]
    MlflowClient(mlflow.get_tracking_uri()).log_batch(run_id, metrics=metrics)


def _log_candidate(
    training: Training, result: SeriesResult, cand: CandidateResult, dataset: PandasDataset
) -> str:
    run = mlflow.start_run(run_name=f"{result.key} | {cand.spec.label}", nested=True)
    status = "FAILED"
    try:
        mlflow.set_tags(
            {
                "series": result.key,
                "model": cand.spec.label,
                "chosen": str(cand is result.chosen).lower(),
                "status": cand.status,
                **training.vintage,
            }
        )
        mlflow.log_input(dataset, context="training")
        mlflow.log_params(
            {
                "series": result.key,
                "model": cand.spec.name,
                "alias": cand.spec.label,
                "origins": len(result.cutoffs),
                "history_start": f"{result.y.index[0]:%Y-%m}",
                **_params(cand.spec.params),
            }
        )
        with tempfile.TemporaryDirectory() as tmp:
            if cand.status == "ok":
                _candidate_artifacts(training, result, cand, Path(tmp))
                status = "FINISHED"
            else:
                _write(Path(tmp), "error.txt", cand.error or "")
                mlflow.set_tag("error", (cand.error or "")[:4000])
            mlflow.log_artifacts(tmp)
    finally:
        mlflow.end_run(status=status)
    return run.info.run_id


def _candidate_artifacts(
    training: Training, result: SeriesResult, cand: CandidateResult, folder: Path
) -> None:
    exp = training.experiment
    mlflow.log_metrics({k: v for k, v in cand.metrics.items() if pd.notna(v)})
    _log_by_horizon(mlflow.active_run().info.run_id, cand, exp.level)
    _write(folder, "backtest.csv", cand.backtest.to_csv(index=False))
    _write(folder, "by_horizon.csv", cand.by_step.to_csv())
    if cand.effects is not None:
        _write(folder, "effects.csv", cand.effects.to_csv())
    X_df = future_regressors(cand.model, result.X, exp.backtest.h)
    frame = cand.model.predict(exp.backtest.h, X_df, exp.level)
    frame = cand.calibrator.transform(frame) if cand.calibrator else frame
    # The numbers behind the fan chart, so candidates' forecasts compare in the UI and in code.
    _write(folder, "forecast.csv", frame.rename_axis("ds").reset_index().to_csv(index=False))
    if not exp.charts:
        return
    events = [
        (pd.Timestamp(e.start).to_period("M").to_timestamp(), e.regressor)
        for e in training.catalog.in_scope(result.key)
    ]
    title = f"{result.key} - {cand.spec.label}"
    _write(
        folder,
        "fan_chart.png",
        fan_chart(
            result.y,
            [(cand.spec.label, frame.rename_axis("ds").reset_index())],
            exp.level,
            events,
            title=title,
        ),
    )
    _write(
        folder,
        "error_by_horizon.png",
        error_by_horizon(cand.by_step, title=f"{title}: backtest MASE"),
    )


def _summary(training: Training) -> dict[str, float]:
    chosen = pd.DataFrame([r.chosen.metrics for r in training.results])
    out = {
        "series": float(len(training.results)),
        "series_failed": float(len(training.failed_series)),
        "series_fell_back": float(len(training.fell_back)),
        "candidates_failed": float(
            sum(c.status != "ok" for r in training.results for c in r.candidates)
        ),
        "train_seconds": training.seconds,
        "convergence_warnings": float(len(training.convergence)),
    }
    for column in (
        "rel_mae",
        "mase",
        "smape",
        *[f"coverage_{lv}" for lv in training.experiment.level],
    ):
        if column in chosen:
            out[f"median_{column}"] = float(chosen[column].median())
    return out


def _log_parent(training: Training, experiment_text: str, home: Path) -> PandasDataset:
    """The parent run's tags, experiment YAML, parameters and dataset (returned: every child
    run logs it too)."""
    exp = training.experiment
    mlflow.set_tags(
        {
            "experiment": exp.name,
            "code_version": code_version(),
            **training.vintage,
            "kind": "training",
        }
    )
    mlflow.log_text(experiment_text, "experiment.yaml")
    dataset = _dataset(training, home)
    mlflow.log_input(dataset, context="training", tags=training.vintage)
    mlflow.log_params(
        {
            "experiment": exp.name,
            "models": ",".join(m.label for m in exp.models),
            "series_count": len(training.results),
            "h": exp.backtest.h,
            "first_cutoff": exp.backtest.first_cutoff,
            "step_months": exp.backtest.step_months,
            "interventions": exp.interventions,
            "level": exp.level,
            "selection": exp.selection,
            "pooled_choice": training.pooled_choice or "",
            "calibration_window_months": exp.calibration_window_months,
            **{f"calibration.{k}": v for k, v in exp.calibration.model_dump().items()},
        }
    )
    return dataset


def log_training(
    training: Training, experiment_text: str, home: Path, promote: bool | None = None
) -> LoggedTraining:
    """Log a parent run with a child per (series, model), register the bundle, maybe promote it.

    Args:
        promote: move the champion alias to the new version: ``True`` always, ``False`` never,
            ``None`` only when there is no champion yet (the first training).
    """
    client = configure(home)
    exp = training.experiment
    exp_id = experiment_id(client, exp.mlflow_experiment, home)
    # Nested child runs go to the active experiment, not their parent's: set it for all of them.
    mlflow.set_experiment(experiment_id=exp_id)
    with mlflow.start_run(experiment_id=exp_id, run_name=f"train {exp.name}") as parent:
        dataset = _log_parent(training, experiment_text, home)
        bundle = training.bundle()
        for result in training.results:
            for cand in result.candidates:
                run_id = _log_candidate(training, result, cand, dataset)
                if cand is result.chosen:
                    bundle.models[result.key].run_id = run_id
        if training.failed_series:
            mlflow.log_dict(training.failed_series, "failed_series.json")
        if training.convergence:
            mlflow.log_text("\n".join(training.convergence) + "\n", "convergence_warnings.txt")
        mlflow.log_metrics(_summary(training))
        bundle.meta.update({"parent_run_id": parent.info.run_id, "code_version": code_version()})
        info = _log_bundle(bundle, exp.registered_model)
    version = str(info.registered_model_version)
    for key, value in {
        **training.vintage,
        "experiment": exp.name,
        "parent_run_id": parent.info.run_id,
        **({PROVISIONAL: "true"} if exp.provisional else {}),
    }.items():
        client.set_model_version_tag(exp.registered_model, version, key, value)
    if promote is None:
        promote = champion_version(client, exp.registered_model) is None
    if promote:
        client.set_registered_model_alias(exp.registered_model, CHAMPION, version)
    log.info(
        "registered %s version %s%s",
        exp.registered_model,
        version,
        " as champion" if promote else "",
    )
    return LoggedTraining(parent.info.run_id, exp.registered_model, version, promote)


def _signature(bundle) -> ModelSignature:
    """Input ``series``, ``h`` and an optional ``scenario``; param ``level``; the forecast frame."""
    inputs = Schema(
        [ColSpec("string", SERIES), ColSpec("long", H), ColSpec("string", SCENARIO, required=False)]
    )
    outputs = Schema(
        [
            ColSpec("string", SERIES),
            ColSpec("string", DS),
            ColSpec("string", KIND),
            *[ColSpec("double", c) for c in forecast_columns(bundle.level)],
        ]
    )
    params = ParamSchema([ParamSpec("level", "long", list(bundle.level), shape=(-1,))])
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)


def _log_bundle(bundle, model_name: str):
    example = pd.DataFrame({SERIES: [bundle.keys[0]], H: [12]})
    signature = _signature(bundle)
    with tempfile.TemporaryDirectory() as tmp:
        path = bundle.save(Path(tmp) / BUNDLE_FILE)
        return mlflow.pyfunc.log_model(
            name=BUNDLE_ARTIFACT,
            python_model=BundleModel(),
            artifacts={"bundle": str(path)},
            signature=signature,
            input_example=example,
            registered_model_name=model_name,
            code_paths=[str(Path(forecasting.__file__).parent)],
            # Given, not inferred: inference loads the model in a subprocess, which costs seconds.
            pip_requirements=_requirements(),
        )


#: What loading and predicting with a bundle imports (``forecasting`` and the engines its models
#: pickle), and no more: ``mlflow models serve`` builds its environment from this list. The
#: service, CLI, scheduler and Dask stay out; mlflow-skinny has the scoring server without the
#: tracking server's database, UI and plotting stack.
PYFUNC_REQUIREMENTS = (
    "mlflow-skinny",
    "numpy",
    "pandas",
    "prophet",
    "pydantic",
    "pyyaml",
    "scikit-learn",
    "scipy",
    "statsmodels",
    "threadpoolctl",
)


def _requirements() -> list[str]:
    """:data:`PYFUNC_REQUIREMENTS` pinned at the installed versions (uv.lock's)."""
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in PYFUNC_REQUIREMENTS]
