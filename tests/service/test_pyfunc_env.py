"""The registered model in an environment built from its own requirements.txt alone, as
`mlflow models serve` without `--env-manager local` builds one: it loads and forecasts there."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from pipelines.tracking import PYFUNC_REQUIREMENTS
from tests.service.conftest import NAIVE_KEY, NAME, UCM_KEY
from tests.stack import ROOT

pytestmark = pytest.mark.slow

UV = Path(sys.executable).parent / "uv"
PREDICT = """
import json, sys
import mlflow.pyfunc, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
out = model.predict(pd.DataFrame({"series": sys.argv[2:], "h": [3] * len(sys.argv[2:])}))
print(json.dumps({"rows": len(out), "columns": list(out.columns)}))
"""


def test_the_model_loads_in_an_environment_of_its_own_requirements(champion, tmp_path):
    # From the champion's own store, whatever other tests left as MLflow's global URIs.
    client = champion.client()
    version = client.get_model_version_by_alias(NAME, "champion").version
    model = Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=client.get_model_version_download_uri(NAME, version),
            dst_path=str(tmp_path / "model"),
            tracking_uri=champion.tracking_uri,
        )
    )
    requirements = (model / "requirements.txt").read_text().split()
    assert sorted(r.split("==")[0] for r in requirements) == sorted(PYFUNC_REQUIREMENTS)
    env, pins = tmp_path / "env", tmp_path / "constraints.txt"
    # The versions uv.lock pins, as `mlflow models serve` would install them from the registry
    # (uv reads the index; the files come from its cache, which make filled from the lock).
    for argv in (
        [
            str(UV),
            "export",
            "--frozen",
            "--all-extras",
            "--no-hashes",
            "--no-emit-project",
            "-o",
            str(pins),
        ],
        [str(UV), "venv", "--quiet", "--python", sys.executable, str(env)],
        [
            *(
                str(UV),
                "pip",
                "install",
                "--quiet",
                "--python",
                str(env / "bin/python"),
            ),
            *("-r", str(model / "requirements.txt"), "-c", str(pins)),
        ],
    ):
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=ROOT)
        assert done.returncode == 0, done.stderr[-3000:]
    done = subprocess.run(
        [str(env / "bin/python"), "-c", PREDICT, str(model), NAIVE_KEY, UCM_KEY],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer == {
        "rows": 6,
        "columns": ["series", "ds", "kind", "mean", "lo_80", "hi_80", "lo_95", "hi_95"],
    }
    # What the service, the CLI and the tracking server need stays out.
    probe = "import importlib.util as u, sys; print([n for n in sys.argv[1:] if u.find_spec(n)])"
    absent = ["dask", "apscheduler", "flask", "sqlalchemy", "openpyxl", "prometheus_client"]
    done = subprocess.run(
        [str(env / "bin/python"), "-c", probe, *absent], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "[]", done.stdout
