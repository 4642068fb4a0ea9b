"""Load benchmark: the service against a stock ``mlflow models serve`` of the same version.

    python -m experiments.serving.bench [--home DIR] [--duration 10] [--out DIR]

Without ``--home`` it trains ``bench.yaml`` (three series, UCM) into a temporary data home with
``encounters train``. It then starts the service as ``encounters serve --workers 2
--no-access-log`` does and a stock ``mlflow models serve -m models:/border-encounters/<champion>
--env-manager local --workers 2`` (access log off too), and drives both from ``wrk`` (a separate
process; Debian's ``wrk``) with the same request mix: one 12-month forecast at levels 80 and 95,
the series taken in turn (the service's ``GET /v1/forecast``, MLflow's ``POST /invocations``).
The service is then timed again with its response caches off (every request runs the full route
and, for counterfactuals, the engine) and with its access log on (the default).
Writes ``results.md`` and ``results.json`` beside this file (or in ``--out``).

Everything runs on 127.0.0.1; every server is stopped with its process group.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

import httpx

log = logging.getLogger("serving-bench")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BIN = Path(sys.executable).parent
NAME = "border-encounters"
LEVEL = (80, 95)
H = 12
EVENT_SCENARIO = {"remove": [{"event": "mx_enforcement_2023_12"}]}
TARGETS = {
    "forecast_rps_32": 3000,
    "forecast_p99_ms_32": 25,
    "forecast_vs_stock": 5,
    "forecast_p50_ms_1": 1,
    "cf_p50_ms_1": 10,
    "cf_p99_ms_32": 150,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    """A server in its own process group, its output in a log file."""

    def __init__(self, name: str, cmd: list[str], env: dict, cwd: Path, ready_url: str):
        self.name = name
        self.log = cwd / (re.sub(r"[^a-z0-9]+", "-", name.lower()) + ".log")
        self._fh = self.log.open("w")
        self.proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=cwd,
            stdout=self._fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 240
        while True:
            try:
                if httpx.get(ready_url, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"{name} did not start; see {self.log}:\n{self.log.read_text()[-3000:]}"
                )
            time.sleep(0.5)

    def _group_files(self, name: str):
        """The text of ``/proc/<pid>/<name>`` for every live process of the server's group."""
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if os.getpgid(int(entry.name)) == self.proc.pid:
                    yield (entry / name).read_text()
            except (OSError, ProcessLookupError):
                continue

    def rss_mb(self) -> float:
        """Resident memory of the process group (the server and its workers), MB."""
        found = (re.search(r"VmRSS:\s+(\d+) kB", status) for status in self._group_files("status"))
        return sum(int(m.group(1)) for m in found if m) / 1024

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process group so far (children included), seconds."""
        total = 0
        for stat in self._group_files("stat"):
            fields = stat.rsplit(")", 1)[1].split()
            total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
        return total / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._fh.close()


def lua(requests: list[tuple[str, str, str | None]]) -> str:
    """A wrk script sending ``requests`` (method, path, JSON body) in turn."""
    lines = ["local requests = {}", "init = function(args)"]
    for i, (method, path, body) in enumerate(requests, start=1):
        headers = '{["Content-Type"] = "application/json"}' if body else "{}"
        text = "nil" if body is None else f"[==[{body}]==]"
        lines.append(f'  requests[{i}] = wrk.format("{method}", [==[{path}]==], {headers}, {text})')
    lines += [
        "end",
        "local i = 0",
        "request = function()",
        "  i = i % #requests + 1",
        "  return requests[i]",
        "end",
    ]
    return "\n".join(lines) + "\n"


@dataclass
class Run:
    name: str
    server: str
    connections: int
    requests_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    requests: int
    errors: int
    server_cpu_us: float  # server CPU per request (all workers), microseconds
    load: float  # 1-minute load average at the end of the run


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def wrk(name: str, server: Process, url: str, script: Path, connections: int, duration: int) -> Run:
    threads = min(2, connections)
    base = ["wrk", f"-t{threads}", f"-c{connections}", "--latency", "-s", str(script), url]
    # Warm-up: connections open, caches filled, nothing recorded.
    subprocess.run([*base[:3], "-d2s", *base[3:]], capture_output=True, check=True)
    cpu = server.cpu_seconds()
    out = subprocess.run(
        [*base[:3], f"-d{duration}s", "--timeout", "5s", *base[3:]],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pct = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)$", out, re.M))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors += int(non2xx.group(1)) if non2xx else 0
    cpu = server.cpu_seconds() - cpu
    run = Run(
        name,
        server.name,
        connections,
        float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        _ms(pct["50"]),
        _ms(pct["90"]),
        _ms(pct["99"]),
        total,
        errors,
        1e6 * cpu / max(total, 1),
        os.getloadavg()[0],
    )
    log.info(
        "%s on %s, %d connections: %.0f req/s, p50 %.2f ms, p99 %.2f ms, %.0f us CPU/req, "
        "errors %d",
        name,
        server.name,
        connections,
        run.requests_per_s,
        run.p50_ms,
        run.p99_ms,
        run.server_cpu_us,
        run.errors,
    )
    return run


def server_env(home: Path) -> dict[str, str]:
    """This environment without the project's settings, serving ``home`` (no polling)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ENCOUNTERS_", "MLFLOW_", "PROMETHEUS_"))
    }
    env.update(
        {
            "ENCOUNTERS_HOME": str(home),
            "ENCOUNTERS_POLL_SECONDS": "0",
            "PATH": f"{BIN}:{env.get('PATH', '')}",
            "MLFLOW_TRACKING_URI": os.environ.get("MLFLOW_TRACKING_URI")
            or f"sqlite:///{home / 'mlflow.db'}",
        }
    )
    return env


def train(home: Path, work: Path, env: dict) -> None:
    log.info("training bench.yaml into %s", home)
    subprocess.run(
        [
            str(BIN / "encounters"),
            "train",
            "--experiment",
            str(HERE / "bench.yaml"),
            "--workers",
            "2",
        ],
        env=env,
        cwd=work,
        check=True,
    )


def serve_ours(
    work: Path, env: dict, name: str, access_log: bool = False, **settings: str
) -> tuple[Process, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = Process(
        name,
        [
            sys.executable,
            "-m",
            "pipelines.serve_cmd",
            "--port",
            str(port),
            "--workers",
            "2",
            "--access-log" if access_log else "--no-access-log",
            "--log-level",
            "warning",
        ],
        {**env, **settings},
        work,
        f"{url}/health",
    )
    return proc, url


def _mixes(keys: list[str]) -> dict[str, list[tuple[str, str, str | None]]]:
    """The same requests for each server: a 12-month forecast at 80 and 95 %, series in turn."""
    query = "&".join(f"level={lv}" for lv in LEVEL)
    stock = {"dataframe_split": {"columns": ["series", "h"]}, "params": {"level": list(LEVEL)}}
    return {
        "get": [("GET", f"/v1/forecast?series={k}&h={H}&{query}", None) for k in keys],
        "post": [
            ("POST", "/v1/forecast", json.dumps({"series": [k], "h": H, "level": list(LEVEL)}))
            for k in keys
        ],
        "stock": [
            (
                "POST",
                "/invocations",
                json.dumps(
                    {**stock, "dataframe_split": {**stock["dataframe_split"], "data": [[k, H]]}}
                ),
            )
            for k in keys
        ],
    }


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, help="A data home with a champion (default: train)")
    parser.add_argument("--duration", type=int, default=10, help="Seconds per measured run.")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")

    work = Path(tempfile.mkdtemp(prefix="serving-bench-"))
    home = (args.home or work / "home").resolve()
    env = server_env(home)
    if args.home is None:
        train(home, work, env)

    from mlflow import MlflowClient

    client = MlflowClient(env["MLFLOW_TRACKING_URI"], env["MLFLOW_TRACKING_URI"])
    version = client.get_model_version_by_alias(NAME, "champion").version
    servers: list[Process] = []
    runs: list[Run] = []
    d = args.duration
    try:
        ours, url = serve_ours(work, env, "service")
        servers.append(ours)
        stock_port = free_port()
        stock_url = f"http://127.0.0.1:{stock_port}"
        stock = Process(
            "mlflow models serve",
            [
                str(BIN / "mlflow"),
                "models",
                "serve",
                "-m",
                f"models:/{NAME}/{version}",
                "--env-manager",
                "local",
                "--host",
                "127.0.0.1",
                "--port",
                str(stock_port),
                "--workers",
                "2",
            ],
            {**env, "UVICORN_ACCESS_LOG": "false"},
            work,
            f"{stock_url}/ping",
        )
        servers.append(stock)

        listing = httpx.get(f"{url}/v1/series").json()["series"]
        keys = [s["series"] for s in listing]
        cf_key = next((s["series"] for s in listing if s["counterfactual"]), None)
        check_same_numbers(url, stock_url, keys[0])
        scripts = {}
        for label, mix in _mixes(keys).items():
            scripts[label] = work / f"{label}.lua"
            scripts[label].write_text(lua(mix))
        log.info("version %s; series %s; load average %.1f", version, keys, os.getloadavg()[0])
        for c in (32, 1):
            runs.append(wrk("GET /v1/forecast", ours, url, scripts["get"], c, d))
            runs.append(wrk("POST /invocations", stock, stock_url, scripts["stock"], c, d))
        runs.append(wrk("POST /v1/forecast", ours, url, scripts["post"], 32, d))
        memory = {"service": ours.rss_mb(), "mlflow models serve": stock.rss_mb()}
        stock.stop()
        servers.remove(stock)

        if cf_key is not None:
            body = json.dumps({"series": cf_key, "scenario": EVENT_SCENARIO, "level": list(LEVEL)})
            scripts["cf"] = work / "cf.lua"
            scripts["cf"].write_text(lua([("POST", "/v1/counterfactual", body)]))
            for c in (1, 32):
                runs.append(wrk("POST /v1/counterfactual", ours, url, scripts["cf"], c, d))
        ours.stop()
        servers.remove(ours)
        # The same requests with every response cache off: each one runs the full route (and
        # for counterfactuals the engine), as a first request for a new query would.
        bare, bare_url = serve_ours(
            work, env, "service, response caches off", ENCOUNTERS_RESPONSE_CACHE_SIZE="0"
        )
        servers.append(bare)
        for c in (32, 1):
            runs.append(wrk("GET /v1/forecast", bare, bare_url, scripts["get"], c, d))
        if cf_key is not None:
            for c in (1, 32):
                runs.append(wrk("POST /v1/counterfactual", bare, bare_url, scripts["cf"], c, d))
        bare.stop()
        servers.remove(bare)
        logged, logged_url = serve_ours(work, env, "service, access log on", access_log=True)
        servers.append(logged)
        runs.append(wrk("GET /v1/forecast", logged, logged_url, scripts["get"], 32, d))
    finally:
        for proc in servers:
            proc.stop()
    write(args.out, runs, memory, version, keys, cf_key, d)
    shutil.rmtree(work, ignore_errors=True)


def check_same_numbers(url: str, stock_url: str, key: str) -> None:
    """Both servers answer the same request with the same forecast (else the race is moot)."""
    ours = httpx.get(
        f"{url}/v1/forecast", params={"series": key, "h": H, "level": list(LEVEL)}
    ).json()["rows"]
    stock = httpx.post(
        f"{stock_url}/invocations",
        json={
            "dataframe_split": {"columns": ["series", "h"], "data": [[key, H]]},
            "params": {"level": list(LEVEL)},
        },
        timeout=60,
    ).json()["predictions"]
    for a, b in zip(ours, stock, strict=True):
        assert a["ds"] == b["ds"] and abs(a["mean"] - b["mean"]) < 0.1, (a, b)


def _find(runs: list[Run], name: str, server: str, c: int) -> Run | None:
    return next(
        (r for r in runs if r.name == name and r.server == server and r.connections == c), None
    )


def write(
    out: Path,
    runs: list[Run],
    memory: dict,
    version: str,
    keys: list[str],
    cf_key: str | None,
    duration: int,
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    ours32 = _find(runs, "GET /v1/forecast", "service", 32)
    ours1 = _find(runs, "GET /v1/forecast", "service", 1)
    stock32 = _find(runs, "POST /invocations", "mlflow models serve", 32)
    cf1 = _find(runs, "POST /v1/counterfactual", "service", 1)
    cf32 = _find(runs, "POST /v1/counterfactual", "service", 32)
    ratio = ours32.requests_per_s / stock32.requests_per_s
    checks = [
        (
            "GET /v1/forecast, 32 connections: req/s",
            f"≥ {TARGETS['forecast_rps_32']:,}",
            f"{ours32.requests_per_s:,.0f}",
            ours32.requests_per_s >= TARGETS["forecast_rps_32"],
        ),
        (
            "GET /v1/forecast, 32 connections: p99",
            f"≤ {TARGETS['forecast_p99_ms_32']} ms",
            f"{ours32.p99_ms:.1f} ms",
            ours32.p99_ms <= TARGETS["forecast_p99_ms_32"],
        ),
        (
            "GET /v1/forecast vs stock MLflow, 32 connections",
            f"≥ {TARGETS['forecast_vs_stock']}x",
            f"{ratio:.1f}x",
            ratio >= TARGETS["forecast_vs_stock"],
        ),
        (
            "GET /v1/forecast, 1 connection: median",
            f"≤ {TARGETS['forecast_p50_ms_1']} ms",
            f"{ours1.p50_ms:.2f} ms",
            ours1.p50_ms <= TARGETS["forecast_p50_ms_1"],
        ),
    ]
    if cf1 and cf32:
        checks += [
            (
                "POST /v1/counterfactual, 1 connection: median",
                f"≤ {TARGETS['cf_p50_ms_1']} ms",
                f"{cf1.p50_ms:.2f} ms",
                cf1.p50_ms <= TARGETS["cf_p50_ms_1"],
            ),
            (
                "POST /v1/counterfactual, 32 connections: p99",
                f"≤ {TARGETS['cf_p99_ms_32']} ms",
                f"{cf32.p99_ms:.1f} ms",
                cf32.p99_ms <= TARGETS["cf_p99_ms_32"],
            ),
        ]
    versions = {
        p: metadata.version(p)
        for p in ("fastapi", "uvicorn", "uvloop", "httptools", "mlflow", "pydantic")
    }
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout
    wrk_version = " ".join(wrk_version.split()[:2])
    lines = [
        "# Serving benchmark: results",
        "",
        f"Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC by "
        "`python -m experiments.serving.bench` "
        f"on {os.cpu_count()} cores ({platform.machine()}, Python {platform.python_version()}); "
        f"registered model `{NAME}` version {version} (series: {', '.join(keys)}). "
        f"Load from `{wrk_version}` in a separate process on the same machine, "
        f"{duration} s per run after a 2 s warm-up; both servers with 2 uvicorn workers "
        "(uvloop + httptools), access logs off. Versions: "
        + ", ".join(f"{k} {v}" for k, v in versions.items())
        + ".",
        "",
        "| request | server | connections | req/s | p50 ms | p90 ms | p99 ms | errors "
        "| server CPU µs/req | load |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in runs:
        lines.append(
            f"| {r.name} | {r.server} | {r.connections} | {r.requests_per_s:,.0f} | "
            f"{r.p50_ms:.2f} | {r.p90_ms:.2f} | {r.p99_ms:.2f} | {r.errors} | "
            f"{r.server_cpu_us:,.0f} | {r.load:.1f} |"
        )
    lines += [
        "",
        "*server CPU µs/req*: user + system CPU time of the server's processes during the run, "
        "per request (robust to other load on the machine); *load*: the machine's 1-minute load "
        "average at the end of the run (2 would be wrk and the server alone).",
        "",
        "Resident memory after the forecast runs (server and its workers): "
        + ", ".join(f"{k} {v:,.0f} MB" for k, v in memory.items())
        + ".",
        "",
        "## Targets",
        "",
        "| target | wanted | measured | met |",
        "| --- | --- | --- | --- |",
    ]
    for what, wanted, got, ok in checks:
        lines.append(f"| {what} | {wanted} | {got} | {'yes' if ok else '**no**'} |")
    if cf_key:
        lines += [
            "",
            f"Counterfactual: `{json.dumps(EVENT_SCENARIO)}` on `{cf_key}`, default "
            "span (a year from the first changed month), levels 80 and 95.",
        ]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    (out / "results.json").write_text(
        json.dumps(
            {
                "version": version,
                "series": keys,
                "runs": [asdict(r) for r in runs],
                "memory_mb": memory,
                "targets_met": {c[0]: c[3] for c in checks},
            },
            indent=2,
        )
        + "\n"
    )
    log.info("wrote %s", out / "results.md")


if __name__ == "__main__":
    main()
