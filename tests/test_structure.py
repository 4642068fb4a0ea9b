"""The shape the code keeps: layers point down, rooms stay small enough to read.

``service`` and ``pipelines`` build on ``forecasting``, never the other way round; a module of
``forecasting`` holds one concern (at most 500 lines) and no function of the shipped packages runs
past 60 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("forecasting", "pipelines", "service")
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _imported(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", SHIPPED)
def test_packages_import_only_downwards(package):
    above = {"forecasting": {"pipelines", "service"}, "pipelines": set(), "service": set()}
    upward = {
        str(path.relative_to(ROOT)): sorted(_imported(ast.parse(path.read_text())) & above[package])
        for path in _modules(package)
    }
    assert {k: v for k, v in upward.items() if v} == {}


def test_forecasting_modules_stay_under_500_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in _modules("forecasting")
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_shipped_functions_stay_under_60_lines():
    long = {}
    for package in SHIPPED:
        for path in _modules(package):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    lines = node.end_lineno - node.lineno + 1
                    if lines > MAX_FUNCTION_LINES:
                        long[f"{path.relative_to(ROOT)}:{node.name}"] = lines
    assert long == {}
