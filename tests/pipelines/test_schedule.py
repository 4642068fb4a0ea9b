from __future__ import annotations

import logging

import pytest
from apscheduler.triggers.cron import CronTrigger

from forecasting.errors import DataError
from pipelines.schedule import cron_trigger, run_schedule


def test_cron_expression_is_validated():
    assert "day='16'" in str(cron_trigger("0 6 16 * *"))
    with pytest.raises(DataError, match=r"'0 6 16 \*' is not accepted.*five fields"):
        cron_trigger("0 6 16 *")


def test_each_run_logs_one_line_and_a_failure_does_not_stop_the_schedule(caplog):
    calls = []

    def job() -> str:
        calls.append(len(calls))
        if len(calls) == 1:
            raise RuntimeError("tracking server unreachable")
        return "up-to-date"

    with caplog.at_level(logging.INFO, logger="pipelines.schedule"):
        run_schedule(CronTrigger(second="*", timezone="UTC"), job, max_runs=2, run_now=True)
    runs = [r.getMessage() for r in caplog.records if "scheduled run" in r.getMessage()]
    assert runs == [
        "scheduled run 1 failed: RuntimeError: tracking server unreachable",
        "scheduled run 2: up-to-date",
    ]
