"""The pure core stays pure: fraud/ imports no service client, web framework or tracker."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "fraud"
ALLOWED_THIRD_PARTY = {"numpy", "pandas", "xgboost", "pydantic"}
FORBIDDEN = {"kafka", "mlflow", "fastapi", "prometheus_client", "dvc", "evidently", "requests"}


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("module", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_core_module_imports_only_pure_libraries(module: Path) -> None:
    import sys

    roots = imported_roots(module)
    assert not roots & FORBIDDEN, f"{module.name} imports {roots & FORBIDDEN}"
    third_party = {r for r in roots if r not in sys.stdlib_module_names and r != "fraud"}
    assert third_party <= ALLOWED_THIRD_PARTY, f"{module.name} imports {third_party}"


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("import numpy as np\nfrom mlflow import MlflowClient\n")
    assert imported_roots(module) == {"numpy", "mlflow"}
