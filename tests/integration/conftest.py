"""Fixtures for tests that run the real tools: dvc, git, pip, MLflow's sqlite store and server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

from tests.harness import KafkaBroker as KafkaBroker

if TYPE_CHECKING:
    from tests.integration.registry_server import RegistryServer

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
PROJECT_FILES = (
    "fraud",
    "infra",
    "pipelines",
    "serving",
    "monitoring",  # the baseline stage runs monitoring.drift
    "notebooks",
    "dvc.yaml",
    "params.yaml",
    "MLproject",
    ".gitignore",
)


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """An environment with no Kaggle credentials, no pip index, and the venv first on PATH."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KAGGLE_", "MLFLOW_", "FRAUD_", "PIP_", "DVC_"))
    }
    env.update(
        HOME=str(home),
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        # pip may only look in an empty folder: no registry is ever asked by these tests.
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=str(home / "no-wheels"),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        DVC_NO_ANALYTICS="1",
        GIT_AUTHOR_NAME="test",
        GIT_AUTHOR_EMAIL="test@example.invalid",
        GIT_COMMITTER_NAME="test",
        GIT_COMMITTER_EMAIL="test@example.invalid",
    )
    (home / "no-wheels").mkdir(parents=True, exist_ok=True)
    env.update(extra)
    return env


def run(
    command: list[str], cwd: Path, env: Mapping[str, str], *, check: bool = True, timeout: int = 600
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command, cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=timeout
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} exited {result.returncode}\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
    return result


def copy_project(destination: Path) -> None:
    for name in PROJECT_FILES:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(
                source, destination / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(source, destination / name)


def update_params(repo: Path, changes: Mapping[str, Mapping[str, object]]) -> None:
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for section, values in changes.items():
        params[section].update(values)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="session")
def dvc_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git + DVC repository holding the project's pipeline code, initialised once."""
    repo = tmp_path_factory.mktemp("template")
    copy_project(repo)
    env = clean_env(tmp_path_factory.mktemp("home"))
    run(["git", "init", "-q", "-b", "main"], repo, env)
    run(["dvc", "init", "-q"], repo, env)
    run(["dvc", "config", "core.analytics", "false"], repo, env)
    return repo


@pytest.fixture
def project(tmp_path: Path, dvc_template: Path) -> Iterator[Path]:
    repo = tmp_path / "repo"
    shutil.copytree(dvc_template, repo, symlinks=True)
    yield repo


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """One Kafka 4 broker (KRaft) for the whole session, stopped at its end even on failure."""
    broker = KafkaBroker.on_free_ports(tmp_path_factory.mktemp("kafka"))
    try:
        broker.start()
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def registry(
    tmp_path_factory: pytest.TempPathFactory, dvc_template: Path
) -> Iterator[RegistryServer]:
    """One `fraud mlflow` server for the session over a registry the real pipeline filled:
    versions 1 and 2 of fraud-detector (tests/integration/registry_server.py)."""
    from tests.integration.registry_server import build_registry  # it imports this module

    server = build_registry(tmp_path_factory.mktemp("registry"), dvc_template)
    try:
        yield server
    finally:
        server.stop()
