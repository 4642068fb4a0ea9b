"""Schemathesis with every check over every route of the real server: any finding fails.

`st run --checks all` generates requests from the served OpenAPI schema (examples, coverage of
each constraint's edges, and fuzzing; valid and invalid), and checks every answer: no 5xx, a
documented status, content type, headers and body, valid data accepted, invalid data refused,
no unchecked authentication, an `Allow` header on 405. Sensitivity refits per request (seconds
on two busy cores), so answers may take up to a minute, not the default 10 s.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ST = Path(sys.executable).parent / "st"
CONFIG = Path(__file__).with_name("schemathesis.toml")
GENERATED = re.compile(r"(\d+) generated, (\d+) passed")


def schemathesis(url: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            *(str(ST), "--config-file", str(CONFIG), "run", f"{url}/openapi.json"),
            *("--checks", "all", "--seed", "1"),
            *("--max-examples", "10", "--no-shrink", "--no-color", "--warnings", "off"),
            *("--request-timeout", "120", "--max-response-time", "60", *extra),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_every_check_over_every_route_finds_nothing(server):
    done = schemathesis(server.url)
    assert done.returncode == 0, done.stdout[-12000:]
    generated, passed = map(int, GENERATED.search(done.stdout).groups())
    assert generated == passed > 1000
    assert "14 passed" in done.stdout, done.stdout[-3000:]
