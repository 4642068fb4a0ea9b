"""Run a job on a cron schedule, in-process (APScheduler), one log line per run."""

from __future__ import annotations

import logging
from collections.abc import Callable

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

from forecasting.errors import DataError

log = logging.getLogger(__name__)


def cron_trigger(expression: str) -> CronTrigger:
    """A standard five-field crontab expression, in UTC."""
    try:
        return CronTrigger.from_crontab(expression, timezone="UTC")
    except ValueError as exc:
        raise DataError(
            f"cron {expression!r} is not accepted: {exc}; give five fields 'minute hour day month "
            "weekday', e.g. '0 6 16 * *' (06:00 UTC on the 16th)"
        ) from exc


def run_schedule(
    trigger: BaseTrigger,
    job: Callable[[], str],
    max_runs: int | None = None,
    run_now: bool = False,
) -> None:
    """Run ``job`` at every firing of ``trigger`` until stopped (or ``max_runs`` runs).

    ``job`` returns a one-line summary; a job that raises is logged and the schedule goes on. Runs
    never overlap: a firing while the previous run is still going is skipped.
    """
    scheduler = BlockingScheduler(timezone="UTC")
    runs = [0]

    def wrapped() -> None:
        runs[0] += 1
        try:
            log.info("scheduled run %d: %s", runs[0], job())
        except Exception as exc:  # noqa: BLE001 - one failed run must not end the schedule
            log.error("scheduled run %d failed: %s: %s", runs[0], type(exc).__name__, exc)
        if max_runs is not None and runs[0] >= max_runs:
            scheduler.shutdown(wait=False)

    scheduler.add_job(wrapped, trigger, max_instances=1, coalesce=True)
    if run_now:
        scheduler.add_job(wrapped)
    log.info("schedule started: %s", trigger)
    scheduler.start()
