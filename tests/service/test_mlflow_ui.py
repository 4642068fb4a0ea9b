"""`encounters ui` in headless Chromium: it lands on the experiment's runs in MLflow's
model-training view, not on the GenAI overview.

With ENCOUNTERS_README_SCREENSHOTS=1 the screenshot is also written to docs/ for the README.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.processes import clean_env, free_port, stop_group
from tests.service.test_page import open_page
from tests.stack import ROOT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("chromium") is None,
        reason="headless Chromium not installed: apt-get install -y chromium",
    ),
]
ENCOUNTERS = Path(sys.executable).parent / "encounters"
ANNOUNCED = re.compile(r"MLflow UI on (\S+)")
README_SHOT = ROOT / "docs" / "mlflow-runs.png"


def _start_ui(home: Path, logs: Path, port: int) -> tuple[subprocess.Popen, str]:
    env = clean_env(home)
    log = logs / "ui.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(ENCOUNTERS), "ui", "--port", str(port), "--experiment", "service-test"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=logs,
            start_new_session=True,
        )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        found = ANNOUNCED.search(log.read_text())
        try:
            if found and httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).is_success:
                return proc, found.group(1)
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    stop_group(proc)
    raise RuntimeError(f"encounters ui did not start:\n{log.read_text()[-3000:]}")


def _wait_for_text(page, text: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    body = ""
    while time.monotonic() < deadline:
        body = page.evaluate("document.body.innerText") or ""
        if text in body:
            break
        time.sleep(0.3)
    return body


def test_ui_lands_on_the_runs_in_the_model_training_view(champion, tmp_path):
    proc, url = _start_ui(champion.home, tmp_path, free_port())
    try:
        experiment = champion.client().get_experiment_by_name("service-test").experiment_id
        assert f"#/experiments/{experiment}/runs" in url
        with open_page(tmp_path, url) as page:
            body = _wait_for_text(page, "train service-test")
            shot = page.screenshot()
    finally:
        stop_group(proc)
    # The model-training navigation (runs, models, the registry) and the training run with its
    # dataset; none of the GenAI view's sections.
    assert "train service-test" in body and "Model registry" in body, body[:2000]
    assert "service-test panel 2025-08" in body
    for genai in ("Overview", "Observability", "Prompts & versions", "Playground"):
        assert genai not in body, genai
    shot.save(tmp_path / "mlflow-runs.png")
    if os.environ.get("ENCOUNTERS_README_SCREENSHOTS"):
        README_SHOT.parent.mkdir(exist_ok=True)
        shot.save(README_SHOT)
