"""Child processes the tests start in their own process group (servers spawn workers)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(home: Path, **settings: str) -> dict[str, str]:
    """This process's environment for a child with its own data home and only ``settings``:
    no ENCOUNTERS_/MLFLOW_/PROMETHEUS_ variable leaks in (MLflow's ``set_tracking_uri``, called
    by in-process tests, writes MLFLOW_TRACKING_URI into os.environ)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ENCOUNTERS_", "MLFLOW_", "PROMETHEUS_"))
    }
    env["ENCOUNTERS_HOME"] = str(home)
    env.update(settings)
    return env


def stop_group(proc: subprocess.Popen, timeout: float = 20) -> None:
    """Stop ``proc``'s whole process group: SIGTERM, then SIGKILL after ``timeout`` seconds."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
