"""dvc.yaml lists every project module a stage imports, so a change to one reruns the stage.

The imports are derived from the code (grimp, the graph import-linter uses), directly and
indirectly, including imports inside functions.
"""

from __future__ import annotations

from pathlib import Path

import grimp
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("cli", "serving", "monitoring", "pipelines", "infra", "fraud")
STAGES = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES)


def module_file(module: str) -> str:
    path = Path(*module.split("."))
    package = REPO_ROOT / path / "__init__.py"
    return str(path / "__init__.py") if package.is_file() else f"{path}.py"


def imported_files(graph: grimp.ImportGraph, module: str) -> set[str]:
    upstream = graph.find_upstream_modules(module)
    return {module_file(m) for m in upstream if m.split(".")[0] in PACKAGES}


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_lists_every_module_it_imports(graph: grimp.ImportGraph, stage: str) -> None:
    command = STAGES[stage]["cmd"]
    prefix = "python -m "
    assert command.startswith(prefix), f"stage {stage} is not run as a module: {command}"
    module = command.removeprefix(prefix).split()[0]
    deps = set(STAGES[stage]["deps"])
    assert module_file(module) in deps
    missing = sorted(imported_files(graph, module) - deps)
    assert missing == [], f"dvc.yaml stage {stage} does not list {missing} in its deps"


def test_the_check_sees_indirect_imports(graph: grimp.ImportGraph) -> None:
    # evaluate reaches fraud.metrics through fraud.cost too, and infra.settings only indirectly
    assert {"fraud/metrics.py", "infra/settings.py"} <= imported_files(graph, "pipelines.evaluate")
