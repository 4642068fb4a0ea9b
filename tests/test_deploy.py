"""The deployable stack: every command compose and the Dockerfile run, parsed by the real CLI;
the MLflow server with the compose flags on a fresh PostgreSQL database, called as the containers
call it; the package installed as the image installs it (not editable)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from tests.processes import free_port
from tests.stack import (
    ROOT,
    SERVICE_HOST,
    MlflowServer,
    compose,
    dockerfile_exec,
    dockerfile_instructions,
    mlflow_argv,
)

UV_PIN = re.compile(r"uv==([0-9.]+)")


def _cli(program: str) -> click.Group:
    if program == "encounters":
        from pipelines.cli import main

        return main
    if program == "mlflow":
        from mlflow.cli import cli

        return cli
    raise AssertionError(f"a command of a program the image does not provide: {program}")


def parse(argv: list[str]) -> click.Context:
    """``argv`` parsed by the program's own click command (options, types, callbacks), as the
    container would run it, without running it."""
    group = _cli(argv[0])
    parent = click.Context(group, info_name=argv[0])
    command = group.get_command(parent, argv[1])
    assert command is not None, f"{argv[0]} has no command {argv[1]!r}"
    return command.make_context(argv[1], list(argv[2:]), parent=parent)


def _commands() -> list[tuple[str, list[str]]]:
    services = compose()["services"]
    found = [(f"compose {name}", s["command"]) for name, s in services.items() if "build" in s]
    return [*found, ("Dockerfile CMD", dockerfile_exec("CMD"))]


@pytest.mark.parametrize(
    ("where", "argv"), _commands(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_command_parses_with_the_real_cli(where, argv):
    try:
        ctx = parse(argv)
    except click.ClickException as exc:
        pytest.fail(f"{where}: {' '.join(argv)}: {exc.format_message()}")
    if argv[:2] == ["encounters", "schedule"]:
        from pipelines.schedule import cron_trigger

        cron_trigger(ctx.params["cron"])
        assert ctx.params["now"], "the scheduler must train the first champion at start-up"


def test_compose_runs_the_four_services_on_shared_volumes():
    services = compose()["services"]
    assert set(services) == {"postgres", "mlflow", "api", "scheduler"}
    assert "postgres:5432/mlflow" in " ".join(services["mlflow"]["command"])
    for name in ("mlflow", "api", "scheduler"):
        assert "artifacts:/mlartifacts" in services[name]["volumes"], name
    for name in ("api", "scheduler"):
        assert services[name]["environment"]["MLFLOW_TRACKING_URI"] == f"http://{SERVICE_HOST}"
    assert set(compose()["volumes"]) == {"pgdata", "artifacts", "home"}


def test_health_checks_run_where_a_server_listens_and_every_service_restarts():
    services = compose()["services"]
    for name, service in services.items():
        assert service.get("restart") == "unless-stopped", name
        check = service.get("healthcheck", {})
        serves = (
            name == "postgres" or "serve" in service["command"] or "server" in service["command"]
        )
        assert bool(check.get("test")) == serves and check.get("disable", False) != serves, name
    for name in ("mlflow", "api"):
        # Exec-form Python health checks: they must at least compile.
        test = services[name]["healthcheck"]["test"]
        compile(test[test.index("-c") + 1], f"{name} healthcheck", "exec")
    image_check = dockerfile_exec("HEALTHCHECK")
    compile(image_check[image_check.index("-c") + 1], "Dockerfile HEALTHCHECK", "exec")


def _pattern(pattern: str) -> re.Pattern:
    """A .dockerignore pattern as Docker matches it (Go's filepath.Match; ``**`` any depth)."""
    parts = re.split(r"(\*\*|\*|\?)", pattern.strip("/"))
    wild = {"**": ".*", "*": "[^/]*", "?": "[^/]"}
    return re.compile("".join(wild.get(p, re.escape(p)) for p in parts))


def _ignored(path: str, lines: list[str]) -> bool:
    """Whether Docker leaves ``path`` out of the build context: the last matching line wins, a
    ``!`` line brings a path back, and a left-out folder leaves out what is inside it."""
    ignored = False
    for line in lines:
        keep = line.startswith("!")
        rule = _pattern(line.removeprefix("!"))
        prefixes = ["/".join(path.split("/")[: i + 1]) for i in range(path.count("/") + 1)]
        if any(rule.fullmatch(p) for p in prefixes):
            ignored = not keep
    return ignored


def test_dockerignore_keeps_local_state_out_and_what_the_image_copies_in():
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for local in (".venv", ".encounters", ".git", "experiments/accuracy"):
        assert _ignored(local, patterns), local
    copied = [
        src
        for args in dockerfile_instructions("COPY")
        if "--from" not in args
        for src in args.split()[:-1]
    ]
    assert {"uv.lock", "pyproject.toml", "experiments"} <= set(copied)
    for src in copied:
        assert (ROOT / src).exists() and not _ignored(src, patterns), src
    shipped = [p.name for p in (ROOT / "experiments").glob("*.yaml")]
    assert "default.yaml" in shipped
    assert not any(_ignored(f"experiments/{name}", patterns) for name in shipped)


def test_make_ci_and_the_image_install_from_one_lock_with_one_uv():
    makefile = (ROOT / "Makefile").read_text()
    dockerfile = (ROOT / "Dockerfile").read_text()
    pyproject = (ROOT / "pyproject.toml").read_text()
    pins = {
        "Makefile": re.search(r"UV_VERSION := ([0-9.]+)", makefile).group(1),
        "Dockerfile": UV_PIN.search(dockerfile).group(1),
        "pyproject.toml": UV_PIN.search(pyproject).group(1),
    }
    assert len(set(pins.values())) == 1, pins
    assert "sync --locked" in makefile and dockerfile.count("uv sync --locked") == 2
    assert "pip install -e" not in makefile and "make test" in (ROOT / ".ci" / "run").read_text()
    # The lock matches pyproject.toml (uv exits non-zero when it would change).
    done = subprocess.run(
        [str(Path(sys.executable).parent / "uv"), "lock", "--locked", "--offline"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.slow
def test_an_installed_copy_finds_the_default_experiment(tmp_path):
    """The image installs the package (not editable): the default experiment and the vendored
    Swagger UI must be in it."""
    wheels, target = tmp_path / "wheels", tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "--quiet"]
    build = [*pip, "wheel", "--no-deps", "-w", str(wheels), str(ROOT)]
    subprocess.run(build, check=True, capture_output=True, timeout=300)
    (wheel,) = wheels.glob("border_encounters-*.whl")
    install = [*pip, "install", "--no-deps", "--target", str(target), str(wheel)]
    subprocess.run(install, check=True, capture_output=True, timeout=300)
    probe = (
        "import pipelines.config as c; from importlib import resources; "
        "exp, _ = c.Experiment.load(c.DEFAULT_EXPERIMENT); "
        "docs = resources.files('service').joinpath('static/swagger/swagger-ui-bundle.js'); "
        "print(c.__file__); print(c.DEFAULT_EXPERIMENT); print(exp.name); print(docs.is_file())"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    module, experiment, name, docs = done.stdout.split()
    assert module.startswith(str(target)) and experiment.startswith(str(target))
    assert name == "default" and docs == "True"


@pytest.mark.slow
def test_mlflow_server_with_the_compose_flags_answers_the_service_name(tmp_path, postgres_uri):
    server = MlflowServer(
        mlflow_argv(free_port(), postgres_uri, tmp_path / "mlartifacts"), tmp_path
    )
    try:
        assert server.get("/api/2.0/mlflow/experiments/search?max_results=1") == 200
        # Still refused: a name the stack does not use.
        assert server.get("/api/2.0/mlflow/experiments/search?max_results=1", "evil.test") == 403
        # The compose health check itself, pointed at this port.
        check = compose()["services"]["mlflow"]["healthcheck"]["test"]
        code = check[check.index("-c") + 1].replace(":5000/", f":{server.url.rsplit(':', 1)[1]}/")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30)
        assert done.returncode == 0, done.stderr[-2000:]
        assert SERVICE_HOST in code
    finally:
        server.stop()
