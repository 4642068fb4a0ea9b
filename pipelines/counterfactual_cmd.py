"""``encounters counterfactual``, ``decompose`` and ``sensitivity``: what-if questions on a series.

They answer from the registered champion version, the model ``POST /v1/counterfactual``,
``/v1/decompose`` and ``/v1/sensitivity`` serve, so the CLI, the API and the page agree; every
answer names the version. ``--refit`` asks instead for a model fitted now on the store's data
(:func:`_fitted_model`, :func:`_fitted_structural_model`, a few seconds per series), and the
answer says so.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

import click
import pandas as pd

import forecasting.counterfactual as cf
import forecasting.decompose as dec
from forecasting.bundle import Bundle
from forecasting.data import ObservationStore
from forecasting.data.store import close_keys
from forecasting.errors import UnknownSeriesError
from forecasting.frame import (
    CUMULATIVE_EFFECT,
    DEFAULT_LEVEL,
    DS,
    EFFECT,
    UNIQUE_ID,
    hi_col,
    lo_col,
    series_history,
)
from forecasting.home import encounters_home
from forecasting.interventions import (
    Catalog,
    Scenario,
    design_matrix,
    indicator_matrix,
    indicator_span,
    load_catalog,
)
from forecasting.models import SARIMAX, UCM, Forecaster
from forecasting.models.base import Capability
from forecasting.sensitivity import DEFAULT_SHIFTS, MAX_SHIFT, onset_report

log = logging.getLogger("encounters")

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
REGISTERED_MODEL = "border-encounters"


@dataclass(frozen=True)
class FittedSeries:
    """A fitted model with the series and design matrix it was fitted on, and their catalog.

    ``version`` and ``bundle`` are the registered champion version it comes from and its
    bundle; ``None`` for a refit.
    """

    model: Forecaster
    y: pd.Series
    X: pd.DataFrame
    catalog: Catalog
    version: str | None = None
    bundle: Bundle | None = None
    panel: pd.DataFrame | None = None

    @property
    def source(self) -> str:
        """One line naming the model that answered."""
        family = type(self.model).__name__
        if self.version is None:
            return (
                f"model: a {family} fitted now on the store's data (--refit), "
                "not the registered champion"
            )
        return f"model: {REGISTERED_MODEL} version {self.version} (champion), its {family}"

    def stamp(self, data: dict) -> dict:
        """``data`` with the version that answered, as the API's ``model_version``."""
        return {**data, "model_version": self.version, "refit": self.version is None}


def _fit(key: str, make: Callable[[], Forecaster], indicators: list[str] = ()) -> FittedSeries:
    panel = ObservationStore(encounters_home()).panel()
    known = panel[UNIQUE_ID].unique().tolist()
    if key not in known:
        raise UnknownSeriesError(key, close_keys(key, known))
    catalog = load_catalog(known_series=known)
    y = series_history(panel, key)
    if indicators:
        # The fit covers the months the series and every indicator it reads were published.
        first, last = indicator_span(panel, list(indicators))
        y = y.loc[first:last]
    X = design_matrix(catalog, key, y.index[0], y.index[-1])
    if indicators:
        X = X.join(indicator_matrix(panel, list(indicators), y.index))
    model = make()
    log.info(
        "fitting %s on %s, %s..%s (%d months)",
        type(model).__name__,
        key,
        f"{y.index[0]:%Y-%m}",
        f"{y.index[-1]:%Y-%m}",
        len(y),
    )
    return FittedSeries(model.fit(y, X), y, X, catalog, panel=panel)


def _fitted_model(key: str, indicators: list[str] = ()) -> FittedSeries:
    """``--refit`` for counterfactuals and sensitivities: the default SARIMAX on the whole
    history, with the ``indicators`` a scenario moves as continuous regressors over their
    months."""
    return _fit(key, SARIMAX, indicators)


def _fitted_structural_model(key: str) -> FittedSeries:
    """``--refit`` for decompositions: the default UCM on the whole history."""
    return _fit(key, UCM)


def champion() -> tuple[Bundle, str]:
    """The registered champion's bundle and version, from the configured tracking store."""
    import mlflow.pyfunc

    from pipelines.tracking import CHAMPION, champion_version, configure

    client = configure(encounters_home())
    version = champion_version(client, REGISTERED_MODEL)
    if version is None:
        raise click.ClickException(
            f"no {REGISTERED_MODEL}@{CHAMPION} in {client.tracking_uri}: train one "
            "(`encounters train`), or pass --refit to fit a model now"
        )
    model = mlflow.pyfunc.load_model(f"models:/{REGISTERED_MODEL}/{version.version}")
    return model.unwrap_python_model().bundle, str(version.version)


def _champion_model(key: str, capability: Capability = Capability.REGRESSION) -> FittedSeries:
    """The champion's regression on interventions for ``key`` with ``capability``
    (``COMPONENTS`` for decompositions), what the API answers from."""
    bundle, version = champion()
    entry = bundle.series_model(key)
    try:
        model = bundle.effect_model(key, capability)
    except NotImplementedError as exc:
        raise click.ClickException(
            f"{exc}; champion version {version} cannot answer this for {key}: pass --refit to "
            "fit a model now"
        ) from exc
    return FittedSeries(model, entry.y, entry.X, bundle.catalog, version, bundle)


def _month(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not MONTH.match(value):
        raise click.BadParameter(f"expected a month as YYYY-MM, e.g. 2024-01; got {value!r}")
    return value


def _levels(ctx: click.Context, param: click.Parameter, value: tuple[int, ...]) -> list[int]:
    bad = [v for v in value if not 0 < v < 100]
    if bad:
        raise click.BadParameter(f"levels are percentages strictly between 0 and 100; got {bad}")
    return sorted(set(value))


def fmt(value: float) -> str:
    return f"{value:,.0f}"


def _interval(row: pd.Series, name: str, level: int) -> str:
    return f"{fmt(row[lo_col(level, name)])}..{fmt(row[hi_col(level, name)])}"


def _counterfactual_table(frame: pd.DataFrame, level: int) -> str:
    header = (
        "month",
        "",
        "reference",
        "counterfactual",
        f"{level}%",
        "effect",
        f"{level}%",
        "cumulative",
        f"{level}%",
    )
    rows = [header]
    for _, row in frame.iterrows():
        rows.append(
            (
                f"{row[DS]:%Y-%m}",
                "obs" if row["observed"] else "fcst",
                fmt(row["reference"]),
                fmt(row["counterfactual"]),
                _interval(row, "counterfactual", level),
                fmt(row[EFFECT]),
                _interval(row, EFFECT, level),
                fmt(row[CUMULATIVE_EFFECT]),
                _interval(row, CUMULATIVE_EFFECT, level),
            )
        )
    return align(rows)


def align(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    )


def _echo_notes(notes: tuple[str, ...]) -> None:
    for note in notes:
        click.echo(f"note: {note}")


LEVEL_OPTION = click.option(
    "--level",
    type=int,
    multiple=True,
    default=DEFAULT_LEVEL,
    show_default=True,
    callback=_levels,
    help="Interval level in percent; repeat for several.",
)


REFIT_OPTION = click.option(
    "--refit",
    is_flag=True,
    help="Fit a fresh model on the store's data now instead of answering from the registered "
    "champion (seconds per series; the answer says so).",
)


@click.command("counterfactual")
@click.argument("key")
@click.option(
    "--scenario",
    "scenario_source",
    required=True,
    metavar="FILE_OR_JSON",
    help="A scenario file (.json/.yaml) or its text, e.g. "
    "'{remove: [{event: mx_enforcement_2023_12}]}'.",
)
@click.option("--start", callback=_month, metavar="YYYY-MM", help="First month of the span.")
@click.option("--end", callback=_month, metavar="YYYY-MM", help="Last month of the span.")
@click.option(
    "--method",
    type=click.Choice(cf.METHODS),
    default=cf.REGRESSOR,
    show_default=True,
    help="regressor: effects fitted on the whole history; pre_period: fit before the change "
    "and forecast it away; controls: the same with series the scenario's events do not act on "
    "as regressors (past months; the notes list them with their weights).",
)
@click.option(
    "--control",
    "controls",
    multiple=True,
    metavar="KEY",
    help="With --method controls: a control series to use instead of the automatic choice "
    "(repeat for several); the notes say which the choice would have excluded, and why.",
)
@LEVEL_OPTION
@REFIT_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def counterfactual(
    key: str,
    scenario_source: str,
    start: str | None,
    end: str | None,
    method: str,
    controls: tuple[str, ...],
    level: list[int],
    refit: bool,
    as_json: bool,
) -> None:
    """What the series would have been, or will be, under a scenario.

    The span may reach into the past, the future or both; by default it starts in the first
    month the scenario changes and lasts a year. Per month: the reference (observed, or the
    baseline forecast), the counterfactual, the effect (reference − counterfactual) and the
    cumulative effect, each with intervals.

    --json prints an object with series, scenario, method, level, start, end, rows, totals,
    summary, notes, model_version and refit; each row has ds, observed, and reference,
    counterfactual, effect, cumulative_effect, each with <name>_lo_<L> and <name>_hi_<L> (e.g.
    effect_lo_95).
    """
    try:
        scenario = Scenario.from_json_or_yaml(scenario_source)
        if refit:
            fitted = _fitted_model(key, scenario.indicator_keys)
            result = cf.counterfactual(
                fitted.model,
                fitted.y,
                fitted.X,
                fitted.catalog,
                key,
                scenario,
                start,
                end,
                method,
                level,
                candidates=cf.panel_candidates(fitted.panel) if method == cf.CONTROLS else None,
                controls=controls,
            )
        else:
            fitted = _champion_model(key)
            # The champion's engine, built as the service builds it: the same answer.
            engine = fitted.bundle.engine(key)
            result = engine.run(scenario, start, end, method, level, controls)
    except (ValueError, UnknownSeriesError) as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(fitted.stamp(result.to_dict()), indent=2))
        return
    click.echo(_counterfactual_table(result.frame, max(result.level)))
    click.echo()
    click.echo(result.summary)
    _echo_notes(result.notes)
    click.echo(fitted.source)


@click.command("decompose")
@click.argument("key")
@click.option(
    "--month", required=True, callback=_month, metavar="YYYY-MM", help="The month to explain."
)
@click.option(
    "--vs",
    type=click.Choice(list(dec.VS)),
    default="previous",
    show_default=True,
    help="Compare with the previous month or the same month a year before.",
)
@LEVEL_OPTION
@REFIT_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def decompose(key: str, month: str, vs: str, level: list[int], refit: bool, as_json: bool) -> None:
    """Split a month's change into seasonal, trend, each intervention and the remainder.

    --json prints an object with series, month, compared_to, vs, level, from, to, change,
    components (each: component, name, change, change_lo_<L>, change_hi_<L>, log_change),
    summary, notes, model_version and refit.
    """
    try:
        fitted = (
            _fitted_structural_model(key) if refit else _champion_model(key, Capability.COMPONENTS)
        )
        result = dec.decompose(
            fitted.model, fitted.y, fitted.X, fitted.catalog, key, month, vs, level
        )
    except (ValueError, UnknownSeriesError) as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(fitted.stamp(result.to_dict()), indent=2))
        return
    top = max(result.level)
    rows = [(dec.COMPONENT, dec.CHANGE, f"{top}%")]
    for _, row in result.frame.iterrows():
        rows.append((row[dec.COMPONENT], fmt(row[dec.CHANGE]), _interval(row, dec.CHANGE, top)))
    click.echo(align(rows))
    click.echo()
    click.echo(result.summary)
    _echo_notes(result.notes)
    click.echo(fitted.source)


@click.command("sensitivity")
@click.argument("key")
@click.option("--event", required=True, help="An event (or group) id in the series' scope.")
@click.option(
    "--shift",
    "shifts",
    type=click.IntRange(-MAX_SHIFT, MAX_SHIFT),
    multiple=True,
    default=DEFAULT_SHIFTS,
    show_default=True,
    help="Months to move the event's dates by; repeat for several (0 is always included).",
)
@LEVEL_OPTION
@REFIT_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def sensitivity(
    key: str, event: str, shifts: tuple[int, ...], level: list[int], refit: bool, as_json: bool
) -> None:
    """How an event's estimated effect moves when its start (and end) move by whole months.

    Catalog dates are uncertain by weeks; each shift refits the series' regression with the
    event moved and reports its effect (percent change while in force), interval and AIC.

    --json prints an object with series, event, regressor, level, rows (each: shift, onset,
    effect, lo_<L>, hi_<L>, status, aic, closest_regressor, months_apart), summary,
    model_version and refit.
    """
    try:
        fitted = _fitted_model(key) if refit else _champion_model(key)
        report = onset_report(fitted.model, fitted.y, fitted.catalog, key, event, shifts, level)
    except (ValueError, UnknownSeriesError) as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(fitted.stamp(report), indent=2))
        return
    top = max(report["level"])
    rows = [("shift", "onset", "effect %", f"{top}%", "AIC", "nearest regressor (months apart)")]
    for row in report["rows"]:
        effect = row["effect"]
        rows.append(
            (
                f"{row['shift']:+d}",
                row["onset"],
                "dropped" if effect is None else f"{effect:+.1f}",
                "" if effect is None else f"{row[f'lo_{top}']:+.1f} to {row[f'hi_{top}']:+.1f}",
                "" if row["aic"] is None else f"{row['aic']:.1f}",
                f"{row['closest_regressor']} ({row['months_apart']})"
                if row["closest_regressor"]
                else "",
            )
        )
    click.echo(align(rows))
    click.echo()
    click.echo(report["summary"])
    click.echo(fitted.source)
