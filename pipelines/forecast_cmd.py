"""``encounters forecast``: a series' forecast from the registered champion, as the API serves it.

The answer is the champion bundle's own record (``Bundle.forecast_record``), the one
``GET /v1/forecast`` returns, with the same version: nowcast rows for months the series has not
published yet but its hierarchy has, then ``--h`` forecast months after the as-of month.
"""

from __future__ import annotations

import json

import click

from forecasting.errors import UnknownSeriesError
from forecasting.frame import MEAN
from forecasting.hierarchy import KIND
from pipelines.counterfactual_cmd import REGISTERED_MODEL, align, champion, fmt


@click.command("forecast")
@click.argument("key")
@click.option(
    "--h", "h", type=int, default=12, show_default=True, help="Months after the as-of month."
)
@click.option(
    "--level",
    type=int,
    multiple=True,
    help="Interval level in percent, among the champion's calibrated ones (default: all of them).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the /v1/forecast JSON object.")
def forecast(key: str, h: int, level: tuple[int, ...], as_json: bool) -> None:
    """A series' calibrated forecast from border-encounters@champion.

    --json prints what GET /v1/forecast answers: series, model_version, model, level,
    last_observed, as_of and rows (ds, kind observed/nowcast/forecast, mean, lo_<L>, hi_<L>,
    intervals).
    """
    bundle, version = champion()
    try:
        record = bundle.forecast_record(key, h, list(level) or None)
    except (ValueError, UnknownSeriesError) as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps({"series": key, "model_version": version, **record}, indent=2))
        return
    levels = record["level"]
    header = ("month", "kind", MEAN, *(f"{lv}%" for lv in levels))
    rows = [header]
    for row in record["rows"]:
        bounds = (f"{fmt(b['lo'])}..{fmt(b['hi'])}" for b in row["intervals"])
        rows.append((row["ds"][:7], row[KIND], fmt(row[MEAN]), *bounds))
    click.echo(align(rows))
    click.echo(
        f"{key}: model {record['model']} of {REGISTERED_MODEL} version {version} (champion); "
        f"last observed {record['last_observed']}, as of {record['as_of']}"
    )
