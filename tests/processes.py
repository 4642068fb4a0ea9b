"""Child processes the tests start in their own process group (servers spawn workers)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
from pathlib import Path

import httpx


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


def request_until(
    url: str, stop: threading.Event, seen: list, errors: list, requests: list[tuple]
) -> None:
    """A client sending ``requests`` (method, path, httpx keyword arguments) in turn on one
    keep-alive connection until ``stop``: the ``model_version`` of each answer goes to ``seen``,
    each failure (no answer, or not 200) to ``errors``."""
    with httpx.Client(base_url=url, timeout=30) as client:
        i = 0
        while not stop.is_set():
            method, path, kwargs = requests[i % len(requests)]
            i += 1
            try:
                response = client.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                errors.append(f"{method} {path}: {exc!r}")
                continue
            if response.status_code != 200:
                errors.append(f"{method} {path}: {response.status_code} {response.text[:200]}")
                continue
            seen.append(response.json()["model_version"])
