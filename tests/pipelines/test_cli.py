from __future__ import annotations

import functools
import http.server
import json
import threading

import pandas as pd
import pytest
from click.testing import CliRunner

from forecasting.data import ObservationStore
from forecasting.data.limits import MAX_FILE_BYTES
from forecasting.data.readers import SBO_HEADER
from pipelines.cli import main
from tests.forecasting.data.cbp_files import aor_file, state_file


@pytest.fixture
def run(home):
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke


def test_ingest_series_and_show_json_shapes(run, tmp_path):
    result = run("ingest", str(aor_file(tmp_path)), str(state_file(tmp_path)))
    assert result.exit_code == 0, result.output
    assert "nationwide-encounters-fy24-aor.csv: added (vintage 2023-11" in result.output

    listing = json.loads(run("series", "--json").stdout)
    cbp = next(s for s in listing if s["key"] == "southwest/cbp")
    assert cbp == {
        "key": "southwest/cbp",
        "first": "2023-10",
        "last": "2025-01",
        "months": 4,
        "latest": 450,
        "sources": sorted(
            ["nationwide-encounters-fy24-aor.csv", "nationwide-encounters-fy25-state.csv"]
        ),
        "kind": "encounters",
        "publication_lag_months": None,
    }

    rows = json.loads(run("show", "southwest/usbp/sector=rio-grande-valley", "--json").stdout)
    assert rows[0] == {
        "ds": "2023-10-01",
        "y": 100,
        "source": "nationwide-encounters-fy24-aor.csv",
        "vintage": "2023-11",
        "filled": False,
    }


def test_indicators_ingest_and_list_apart_from_encounter_series(run, indicator_files, tmp_path):
    result = run("ingest", str(aor_file(tmp_path)), *map(str, indicator_files))
    assert result.exit_code == 0, result.output
    assert "irreg_darien_nat.rda: added (vintage 2025-04" in result.output
    listing = {s["key"]: s for s in json.loads(run("series", "--json").stdout)}
    darien = listing["panama/darien/transits/citizenship=venezuela"]
    assert (darien["kind"], darien["publication_lag_months"], darien["first"]) == (
        "indicator",
        1,
        "2020-01",
    )
    assert listing["mexico/inm/presented"]["publication_lag_months"] == 2
    assert listing["southwest/usbp"]["kind"] == "encounters"
    text = run("series").stdout
    encounters, indicators = text.split("Indicators (upstream flows")
    assert "southwest/usbp" in encounters and "mexico/inm" not in encounters
    assert "mexico/inm/presented/citizenship=venezuela" in indicators


def test_ingest_twice_says_unchanged(run, tmp_path):
    path = str(aor_file(tmp_path))
    run("ingest", path)
    assert "already held, unchanged" in run("ingest", path).output


def test_bad_file_exits_1_with_the_reason(run, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    result = CliRunner().invoke(main, ["ingest", str(bad)])
    assert result.exit_code == 1
    assert "bad.csv: unknown layout" in result.output
    assert "Traceback" not in result.output


def test_a_broken_store_exits_1_naming_the_missing_file(run, home, tmp_path):
    run("ingest", str(aor_file(tmp_path)))
    (release,) = (home / "store" / "releases").glob("*.parquet")
    release.unlink()
    result = CliRunner().invoke(main, ["series"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "the store is broken" in result.output and release.name in result.output


def test_a_busy_store_exits_1_saying_retry(run, home, tmp_path, monkeypatch):
    monkeypatch.setattr("forecasting.data.store.LOCK_WAIT_S", 0.2)
    with ObservationStore(home).writing("retrain"):
        # Another thread of this process, like another process, waits and gives up.
        outcome = []
        worker = threading.Thread(
            target=lambda: outcome.append(
                CliRunner().invoke(main, ["ingest", str(aor_file(tmp_path))])
            )
        )
        worker.start()
        worker.join(30)
    (result,) = outcome
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "is busy: retrain (pid" in result.output and "retry" in result.output


def test_unknown_series_exits_1_with_close_matches(run):
    result = CliRunner().invoke(main, ["show", "southwest/usbp/sector=rio-grand-valley"])
    assert result.exit_code == 1
    assert "did you mean southwest/usbp/sector=rio-grande-valley" in result.output


def test_missing_file_is_named(run, tmp_path):
    result = CliRunner().invoke(main, ["ingest", str(tmp_path / "nope.csv")])
    assert result.exit_code == 1 and "nope.csv: no such file" in result.output


def test_ingest_from_an_http_url(run, tmp_path):
    folder = tmp_path / "www"
    folder.mkdir()
    aor_file(folder)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/nationwide-encounters-fy24-aor.csv"
        result = run("ingest", url)
        missing = CliRunner().invoke(main, ["ingest", url.replace("fy24", "fy99")])
    finally:
        server.shutdown()
        server.server_close()
    assert "nationwide-encounters-fy24-aor.csv: added" in result.output
    assert missing.exit_code == 1 and "could not download" in missing.output
    show = json.loads(run("show", "southwest/cbp", "--json").stdout)
    assert show[0]["source"] == "nationwide-encounters-fy24-aor.csv"


@pytest.mark.slow
def test_up_seeds_trains_once_then_reuses_the_champion(run, mlflow_home, tiny_experiment):
    # --no-quick: the experiment trained in the foreground (tests/pipelines/test_up.py runs the
    # default, a stand-in first and the experiment in the background).
    first = run("up", "--experiment", str(tiny_experiment), "--no-serve", "--no-quick")
    assert first.exit_code == 0
    assert "trained border-encounters version 1 (champion)" in first.stdout
    assert (mlflow_home / "store" / "manifest.json").is_file()
    assert (mlflow_home / "mlflow.db").is_file()
    second = run("up", "--experiment", str(tiny_experiment), "--no-serve")
    assert "champion: border-encounters version 1" in second.stdout


@pytest.mark.parametrize(("flags", "now"), [(["--now"], True), ([], False)])
def test_schedule_now_also_retrains_at_start_up(run, monkeypatch, flags, now):
    from pipelines import schedule

    started = {}
    monkeypatch.setattr(
        schedule, "run_schedule", lambda trigger, job, run_now: started.update(run_now=run_now)
    )
    result = run("schedule", "--cron", "0 6 16 * *", *flags)
    assert result.exit_code == 0, result.output
    assert started == {"run_now": now}


# -- issue 18: errors are one line, downloads are bounded, far vintages need --force --------------
def _sbo_month(ds: pd.Timestamp, count: int) -> str:
    fy = ds.year + (ds.month >= 10)
    month = ds.strftime("%b").upper()
    return "".join(
        f"{fy},FYTD,{month},{component},Single Adults,Mexico,Title 8,Apprehensions,{count}\n"
        for component in ("U.S. Border Patrol", "Office of Field Operations")
    )


def _sbo_file(folder, name: str, ds: pd.Timestamp):
    path = folder / name
    path.write_text(SBO_HEADER + "\n" + _sbo_month(ds, 10))
    return str(path)


def test_a_release_far_past_the_stores_newest_needs_force(run, tmp_path):
    now = pd.Timestamp.today().normalize().replace(day=1)
    run("ingest", _sbo_file(tmp_path, "old.csv", now - pd.DateOffset(months=14)))
    close = _sbo_file(tmp_path, "close.csv", now - pd.DateOffset(months=2))
    far = _sbo_file(tmp_path, "far.csv", now)
    refused = CliRunner().invoke(main, ["ingest", far])
    assert refused.exit_code == 1
    assert f"far.csv: its last month {now:%Y-%m} is more than 12 months after" in refused.output
    assert "--force" in refused.output and len(refused.output.splitlines()) == 1
    assert run("ingest", close).exit_code == 0
    assert "far.csv: added" in run("ingest", "--force", far).output


def test_a_header_only_file_is_one_line_and_exit_1(run, sbo_file, tmp_path):
    path = tmp_path / "header.csv"
    path.write_bytes(sbo_file.read_bytes().splitlines(keepends=True)[0])
    result = CliRunner().invoke(main, ["ingest", str(path)])
    assert result.exit_code == 1
    assert result.output == "Error: header.csv: a header and no data rows; nothing to ingest\n"


def test_an_unexpected_error_is_one_line_with_the_traceback_only_under_debug(
    run, home, sbo_file, caplog
):
    home.parent.mkdir(parents=True, exist_ok=True)
    home.write_text("a file where the data home should be")
    result = CliRunner().invoke(main, ["ingest", str(sbo_file)])
    assert result.exit_code == 1 and len(result.output.splitlines()) == 1
    assert result.output.startswith("Error: unexpected ") and "run with --debug" in result.output
    assert not [r for r in caplog.records if r.exc_info]
    debug = CliRunner().invoke(main, ["--debug", "ingest", str(sbo_file)])
    assert debug.exit_code == 1 and "Traceback" not in debug.output
    assert [r for r in caplog.records if r.exc_info], "--debug logs the traceback"


class _Endless(http.server.BaseHTTPRequestHandler):
    """Streams twice the size limit of zeros, with or without announcing its length."""

    def do_GET(self):
        size = 2 * MAX_FILE_BYTES
        self.send_response(200)
        if self.path.endswith("announced"):
            self.send_header("Content-Length", str(size))
        self.end_headers()
        chunk = b"0" * (1 << 20)
        try:
            for _ in range(size // len(chunk)):
                self.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("path", ["announced", "unannounced"])
def test_a_download_over_the_size_limit_is_refused(run, path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Endless)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/{path}"
        result = CliRunner().invoke(main, ["ingest", url])
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 1
    assert f"{url}: " in result.output and f"at most {MAX_FILE_BYTES:,} bytes" in result.output
