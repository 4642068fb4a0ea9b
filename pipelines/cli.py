"""The ``encounters`` command."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import click
import pandas as pd

from forecasting.data import ObservationStore
from forecasting.data.indicators import is_indicator, publication_lag
from forecasting.errors import DataError, ScenarioError, UnknownSeriesError
from forecasting.frame import DS, UNIQUE_ID, Y
from forecasting.home import encounters_home
from pipelines import ingest as ingest_mod
from pipelines.config import DEFAULT_EXPERIMENT, DEFAULT_MARGIN, QUICK_EXPERIMENT, Experiment
from pipelines.counterfactual_cmd import counterfactual, decompose, sensitivity
from pipelines.executors import EXECUTORS
from pipelines.forecast_cmd import forecast
from pipelines.interventions_cmd import interventions
from pipelines.serve_cmd import run_server, serve

log = logging.getLogger("encounters")
RETRAIN_SOURCES = "ENCOUNTERS_RETRAIN_SOURCES"
POLL_ENV = "ENCOUNTERS_POLL_SECONDS"
#: How often the server ``up`` starts looks for the champion while the full training runs.
BACKGROUND_POLL_SECONDS = 5
#: What ``encounters series --json`` calls each kind of series.
ENCOUNTERS = "encounters"
INDICATOR = "indicator"


def _experiment_option(help_text: str):
    return click.option(
        "--experiment",
        "experiment_path",
        type=click.Path(dir_okay=False),
        default=str(DEFAULT_EXPERIMENT),
        show_default=True,
        help=help_text,
    )


def _executor_options(fn):
    """``--executor`` and ``--workers``, the same for every command that trains."""
    fn = click.option(
        "--workers",
        type=click.IntRange(1, 64),
        default=2,
        show_default=True,
        help="Worker processes (local pool or Dask LocalCluster).",
    )(fn)
    return click.option(
        "--executor", default="local", show_default=True, help=f"Where the fits run: {EXECUTORS}."
    )(fn)


def _store() -> ObservationStore:
    return ObservationStore(encounters_home())


#: An error message longer than this is cut: the user needs the reason, not the input echoed.
MAX_ERROR_CHARS = 2_000


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MAX_ERROR_CHARS else line[:MAX_ERROR_CHARS] + "…"


def _fail(exc: Exception) -> None:
    raise click.ClickException(_one_line(str(exc))) from exc


class _Group(click.Group):
    """Every error one line and exit code 1; the traceback goes to the log with --debug."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except (DataError, ScenarioError, UnknownSeriesError) as exc:
            _log_traceback(ctx, exc)
            _fail(exc)
        except Exception as exc:
            _log_traceback(ctx, exc)
            hint = "" if ctx.params.get("debug") else " (run with --debug for the traceback)"
            raise click.ClickException(
                _one_line(f"unexpected {type(exc).__name__}: {exc}") + hint
            ) from exc


def _log_traceback(ctx: click.Context, exc: Exception) -> None:
    if ctx.params.get("debug"):
        log.error("%s failed", ctx.invoked_subcommand, exc_info=exc)


@click.group(cls=_Group)
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
@click.option("--debug", is_flag=True, help="Log debug detail and the traceback of an error.")
def main(verbose: bool, debug: bool) -> None:
    """Forecasts and counterfactuals for U.S. southwest-border encounters.

    State lives in $ENCOUNTERS_HOME (default ./.encounters).
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose or debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


main.add_command(interventions)
main.add_command(forecast)
main.add_command(counterfactual)
main.add_command(decompose)
main.add_command(sensitivity)
main.add_command(serve)


@main.command()
@click.argument("sources", nargs=-1, required=True)
@click.option(
    "--force",
    is_flag=True,
    help="Accept a release whose last month lies more than "
    f"{ingest_mod.MAX_VINTAGE_JUMP_MONTHS} months after the store's newest.",
)
def ingest(sources: tuple[str, ...], force: bool) -> None:
    """Ingest official files (paths or http(s) URLs) into the store."""
    store = _store()
    for r in ingest_mod.ingest(store, list(sources), force=force):
        verb = "added" if r.status == "added" else "already held, unchanged"
        click.echo(
            f"{r.name}: {verb} (vintage {r.vintage}, {r.series} series, "
            f"{r.observations} observations)"
        )


def _summary(store: ObservationStore) -> pd.DataFrame:
    panel = store.panel()
    grouped = panel.groupby(UNIQUE_ID, sort=True)
    keys = list(grouped.groups)
    return pd.DataFrame(
        {
            "key": keys,
            "first": grouped[DS].min().dt.strftime("%Y-%m").to_list(),
            "last": grouped[DS].max().dt.strftime("%Y-%m").to_list(),
            "months": grouped.size().to_list(),
            "latest": grouped[Y].last().astype(int).to_list(),
            "sources": grouped["source"].agg(lambda s: sorted(set(s))).to_list(),
            "kind": [INDICATOR if is_indicator(k) else ENCOUNTERS for k in keys],
            # object dtype: encounter series have no lag (JSON null, not NaN).
            "publication_lag_months": pd.Series(
                [publication_lag(k) if is_indicator(k) else None for k in keys], dtype=object
            ),
        }
    )


def _echo_series(store: ObservationStore, as_json: bool) -> None:
    summary = _summary(store)
    if as_json:
        click.echo(json.dumps(summary.to_dict(orient="records"), indent=2))
        return
    if store.is_empty:
        click.echo("(store is empty: showing the embedded snapshot)", err=True)
    text = summary.assign(sources=summary["sources"].str.join(", "))
    encounters = text[text["kind"] == ENCOUNTERS].drop(columns=["kind", "publication_lag_months"])
    click.echo(encounters.to_string(index=False))
    indicators = text[text["kind"] == INDICATOR].drop(columns="kind")
    if not indicators.empty:
        click.echo("\nIndicators (upstream flows and Mexico's enforcement; not forecast):")
        lag = indicators["publication_lag_months"].astype(int)
        click.echo(indicators.assign(publication_lag_months=lag).to_string(index=False))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def series(as_json: bool) -> None:
    """List the series: key, first and last month, months, latest value, sources.

    Encounter series first, then the indicators with their publication lag; in --json each
    object also has kind (encounters or indicator) and publication_lag_months.
    """
    _echo_series(_store(), as_json)


@main.command()
@click.argument("key")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.option("--all-vintages", is_flag=True, help="Every release's figure, not just the newest.")
def show(key: str, as_json: bool, all_vintages: bool) -> None:
    """Show one series month by month, with provenance."""
    rows = _store().series(key, all_vintages=all_vintages)
    out = pd.DataFrame(
        {
            "ds": rows[DS].dt.strftime("%Y-%m-%d"),
            "y": rows[Y].astype(int),
            "source": rows["source"],
            "vintage": rows["vintage"].dt.strftime("%Y-%m"),
            "filled": rows["filled"].astype(bool),
        }
    )
    if as_json:
        click.echo(json.dumps(out.to_dict(orient="records"), indent=2))
    else:
        click.echo(out.to_string(index=False))


@main.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="forecasting/data/snapshot",
    show_default=True,
    help="Folder to write the snapshot into.",
)
def snapshot(out: str) -> None:
    """Export the store as the compact table the project embeds (maintainers only)."""
    store = _store()
    if store.is_empty:
        raise click.ClickException("the store is empty: ingest the official files first")
    for path in store.export_snapshot(out):
        click.echo(str(path))


@main.command()
@_experiment_option("Experiment YAML.")
@click.option(
    "--series",
    "series",
    multiple=True,
    metavar="KEY",
    help="Train only these series (repeatable; globs such as 'southwest/usbp/sector=*').",
)
@_executor_options
@click.option(
    "--promote/--no-promote",
    default=None,
    help="Move the champion alias to this version (default: only the first training).",
)
def train(
    experiment_path: str, series: tuple[str, ...], executor: str, workers: int, promote: bool | None
) -> None:
    """Backtest and fit every (series, model) of an experiment; log to MLflow; register."""
    logged = _train(experiment_path, list(series), executor, workers, promote)
    click.echo(
        f"registered {logged.model_name} version {logged.model_version}"
        + (" (champion)" if logged.promoted else "")
        + f"; parent run {logged.parent_run_id}"
    )


def _train(
    experiment_path: str, series: list[str], executor: str, workers: int, promote: bool | None
):
    # Imported here: model engines and MLflow take seconds to import, and the data commands
    # (ingest, series, show) should not pay for them.
    from pipelines.tracking import log_training
    from pipelines.train import train as run_training

    experiment, text = Experiment.load(experiment_path)
    store = _store()
    training = run_training(experiment, store, series, executor, workers)
    logged = log_training(training, text, encounters_home(), promote)
    if training.fell_back or training.failed_series:
        log.warning(
            "%d series fell back to the baseline, %d failed: %s",
            len(training.fell_back),
            len(training.failed_series),
            training.fell_back + sorted(training.failed_series),
        )
    return logged


def _retrain_options(fn):
    options = [
        click.option(
            "--source",
            "sources",
            multiple=True,
            metavar="PATH_OR_URL",
            help="Release to ingest first (repeatable); default: "
            "$ENCOUNTERS_RETRAIN_SOURCES (comma-separated), which may be empty.",
        ),
        click.option(
            "--experiment",
            "experiment_path",
            type=click.Path(dir_okay=False),
            default=None,
            help="Challenger's experiment (default: the champion's).",
        ),
        click.option(
            "--margin",
            type=click.FloatRange(0, 10),
            default=DEFAULT_MARGIN,
            show_default=True,
            help="How much worse (relMAE ratio - 1) any one series may get.",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return _executor_options(fn)


def _retrain_job(sources, experiment_path, margin, executor, workers):
    from pipelines.retrain import retrain as run_retrain

    configured = [s.strip() for s in os.environ.get(RETRAIN_SOURCES, "").split(",") if s.strip()]

    def job() -> str:
        decision = run_retrain(
            encounters_home(),
            list(sources) or configured,
            experiment_path,
            margin,
            executor=executor,
            workers=workers,
        )
        versions = f"champion {decision.champion_version}, challenger {decision.challenger_version}"
        return f"{decision.outcome} ({versions}): {'; '.join(decision.reasons)}"

    return job


@main.command()
@_retrain_options
def retrain(sources, experiment_path, margin, executor, workers) -> None:
    """Ingest new releases, train a challenger, promote it only if it is no worse."""
    from pipelines.retrain import RetrainBusy

    try:
        click.echo(_retrain_job(sources, experiment_path, margin, executor, workers)())
    except RetrainBusy as exc:
        _fail(exc)


@main.command()
@click.option(
    "--cron", required=True, help="Five-field crontab expression in UTC, e.g. '0 6 16 * *'."
)
@click.option(
    "--now",
    is_flag=True,
    help="Also retrain once at start-up (a fresh deployment gets its first champion at once).",
)
@_retrain_options
def schedule(cron, now, sources, experiment_path, margin, executor, workers) -> None:
    """Run retrain on a cron schedule, in this process, until stopped."""
    from pipelines.schedule import cron_trigger, run_schedule

    run_schedule(
        cron_trigger(cron),
        _retrain_job(sources, experiment_path, margin, executor, workers),
        run_now=now,
    )


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=5000, show_default=True)
@click.option(
    "--experiment",
    "experiment_name",
    default=None,
    metavar="NAME",
    help="MLflow experiment to open on its runs (default: the default experiment's).",
)
def ui(host: str, port: int, experiment_name: str | None) -> None:
    """Open the MLflow UI on the project's tracking store, at an experiment's training runs."""
    import subprocess

    from pipelines.tracking import runs_url, tracking_uri

    home = encounters_home()
    uri = tracking_uri(home)
    name = experiment_name or Experiment.load(DEFAULT_EXPERIMENT)[0].mlflow_experiment
    click.echo(f"MLflow UI on {runs_url(uri, name, host, port)} (store {uri})")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "mlflow",
            "ui",
            "--backend-store-uri",
            uri,
            "--host",
            host,
            "--port",
            str(port),
        ],
        check=False,
    )


@main.command()
@_experiment_option("Experiment to train when there is no champion yet.")
@click.option(
    "--serve/--no-serve",
    default=True,
    show_default=True,
    help="End by serving the API in the foreground.",
)
@click.option("--port", type=int, default=8000, show_default=True, help="The API's port.")
@click.option(
    "--quick/--no-quick",
    default=True,
    show_default=True,
    help="Without a champion, first register and serve a quick stand-in on the experiment's "
    f"series ({QUICK_EXPERIMENT.name}) and train the experiment in the background.",
)
def up(experiment_path: str, serve: bool, port: int, quick: bool) -> None:
    """The main job on embedded defaults: seed, train if there is no champion, serve the API.

    Without a champion (and with --quick) the server starts at once while a background process
    registers a quick stand-in (served within about a minute), then trains the experiment and
    promotes it through the retrain gate; the server swaps to it without a restart.
    """
    from pipelines.background import settled
    from pipelines.tracking import PROVISIONAL, champion_version, configure

    store = _store()
    if store.seed():
        log.info("seeded the empty store at %s from the embedded snapshot", store.root)
    home = encounters_home()
    client = configure(home)
    experiment, _ = Experiment.load(experiment_path)
    champion = champion_version(client, experiment.registered_model)
    argv = [sys.executable, "-m", "pipelines.background", experiment_path]
    if champion is None and quick:
        click.echo(
            "no champion yet: registering a quick stand-in (last value or seasonal naive), "
            f"then training {experiment.name} in the background"
        )
        argv.append("--stand-in")
    elif champion is None:
        logged = _train(experiment_path, [], "local", 2, None)
        click.echo(f"trained {logged.model_name} version {logged.model_version} (champion)")
        argv = []
    else:
        provisional = champion.tags.get(PROVISIONAL) == "true"
        click.echo(
            f"champion: {experiment.registered_model} version {champion.version}"
            + (" (a quick stand-in)" if provisional else "")
        )
        if not provisional or settled(home, experiment.name, store.fingerprint()):
            argv = []
    click.echo(f"MLflow UI:  run `encounters ui` (store {client.tracking_uri})")
    if not argv:
        if serve:
            run_server("127.0.0.1", port, workers=2)
        return
    if not serve:
        subprocess.run(argv, check=True)
        return
    # The trainer starts its fits once the server answers, and the server looks for the new
    # champion every few seconds rather than every minute.
    argv += ["--wait-for", f"http://127.0.0.1:{port}/health"]
    os.environ.setdefault(POLL_ENV, str(BACKGROUND_POLL_SECONDS))
    trainer = subprocess.Popen(argv)
    try:
        run_server("127.0.0.1", port, workers=2)
    finally:
        if trainer.poll() is None:
            trainer.terminate()
            trainer.wait(timeout=30)
