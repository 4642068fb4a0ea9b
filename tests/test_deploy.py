"""The deployable stack: what can be checked without a Docker engine."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def dockerfile_instruction(name: str) -> str:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    found = re.findall(rf"^{name}\s+(.*)$", text, flags=re.MULTILINE)
    assert found, f"Dockerfile has no {name}"
    return found[-1]


def run(argv: list[str]) -> subprocess.CompletedProcess:
    exe = BIN / argv[0] if (BIN / argv[0]).exists() else argv[0]
    return subprocess.run([str(exe), *argv[1:]], capture_output=True, text=True, timeout=120)


def test_compose_names_every_service_and_shares_the_artifact_volume():
    services = compose()["services"]
    assert set(services) == {"postgres", "mlflow", "api", "scheduler"}
    mlflow_cmd = services["mlflow"]["command"]
    assert "postgresql://mlflow:mlflow@postgres:5432/mlflow" in mlflow_cmd
    for name in ("mlflow", "api", "scheduler"):
        assert "artifacts:/mlartifacts" in services[name]["volumes"], name
    for name in ("api", "scheduler"):
        assert services[name]["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert set(compose()["volumes"]) == {"pgdata", "artifacts", "home"}


def test_compose_commands_run_from_a_local_install():
    for name in ("mlflow", "api", "scheduler"):
        argv = compose()["services"][name]["command"]
        done = run([argv[0], *argv[1:2], "--help"])
        assert done.returncode == 0, (name, done.stderr[-2000:])


def test_dockerfile_is_multi_stage_non_root_with_a_health_check():
    text = (ROOT / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, flags=re.MULTILINE)) == 2
    assert "USER encounters" in text
    cmd = json.loads(dockerfile_instruction("CMD"))
    assert cmd[:2] == ["encounters", "serve"]
    assert run([*cmd[:2], "--help"]).returncode == 0
    health = dockerfile_instruction("HEALTHCHECK")
    assert "/health" in health and "CMD" in health
