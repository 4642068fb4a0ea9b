"""The deployable stack's own files, read as the tests exercise them: compose and Dockerfile
commands, and an ``mlflow server`` started with the compose service's flags on 127.0.0.1."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

from tests.processes import stop_group

ROOT = Path(__file__).resolve().parents[1]
#: How the containers name the tracking server (docker-compose.yml's MLFLOW_TRACKING_URI).
SERVICE_HOST = "mlflow:5000"


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def dockerfile_instructions(name: str) -> list[str]:
    """Every ``name`` instruction's arguments in the Dockerfile, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return re.findall(rf"^{name}\s+(.*)$", text, flags=re.MULTILINE)


def dockerfile_exec(name: str) -> list[str]:
    """The exec-form argv of the last ``CMD`` (or ``HEALTHCHECK ... CMD``) instruction."""
    found = dockerfile_instructions(name)
    assert found, f"Dockerfile has no {name}"
    return json.loads(found[-1][found[-1].index("[") :])


def mlflow_argv(port: int, backend_uri: str, artifacts: Path) -> list[str]:
    """The compose ``mlflow`` service's command for this machine: the same flags, bound to
    127.0.0.1:``port``, on the database of ``backend_uri`` through compose's driver (its URI
    scheme), with artifacts under ``artifacts``; one worker."""
    argv = list(compose()["services"]["mlflow"]["command"])
    scheme = argv[argv.index("--backend-store-uri") + 1].split("://", 1)[0]
    swap = {
        "--host": "127.0.0.1",
        "--port": str(port),
        "--backend-store-uri": f"{scheme}://{backend_uri.split('://', 1)[1]}",
        "--default-artifact-root": artifacts.as_uri(),
    }
    for flag, value in swap.items():
        argv[argv.index(flag) + 1] = value
    return [*argv, "--workers", "1"]


class MlflowServer:
    """``mlflow server`` from an argv (its own process group), stopped whole."""

    # Its start-up imports MLflow's whole server (seconds on a quiet machine); under CI's load it
    # has taken over 90 s, so the wait is long and the log is shown when it runs out.
    def __init__(self, argv: list[str], cwd: Path, timeout: float = 300):
        port = argv[argv.index("--port") + 1]
        self.url = f"http://127.0.0.1:{port}"
        self.log = cwd / "mlflow-server.log"
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", *argv],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2):
                    return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"mlflow server did not start:\n{self.log.read_text()[-3000:]}"
                    ) from None
                time.sleep(0.5)

    def get(self, path: str, host: str = SERVICE_HOST) -> int:
        """The status of a GET of ``path`` sent with ``host`` as its Host header."""
        request = urllib.request.Request(f"{self.url}{path}", headers={"Host": host})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    def stop(self) -> None:
        stop_group(self.proc)
