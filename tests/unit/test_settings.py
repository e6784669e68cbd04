"""The one settings module: defaults, the names they come from, and where the defaults point."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

import infra.settings as settings_module
from infra.paths import project_root
from infra.settings import (
    DEFAULT_MODEL_NAME,
    PRODUCTION_ALIAS,
    FraudSettings,
    ModelSettings,
    TrackingSettings,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_every_settings_class_shares_the_base() -> None:
    classes = [
        c
        for _, c in inspect.getmembers(settings_module, inspect.isclass)
        if issubclass(c, BaseSettings) and c not in (BaseSettings, FraudSettings)
    ]
    assert len(classes) >= 7
    assert all(issubclass(c, FraudSettings) for c in classes)
    assert all(c.model_config.get("env_prefix") == "FRAUD_" for c in classes)


def test_no_settings_class_lives_elsewhere() -> None:
    elsewhere = [
        str(path.relative_to(REPO_ROOT))
        for package in ("fraud", "infra", "pipelines", "serving", "monitoring", "cli")
        for path in (REPO_ROOT / package).rglob("*.py")
        if "BaseSettings" in path.read_text() and path != Path(settings_module.__file__)
    ]
    assert elsewhere == []


def test_model_name_and_alias_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FRAUD_MODEL_NAME", raising=False)
    monkeypatch.delenv("FRAUD_MODEL_ALIAS", raising=False)
    settings = ModelSettings()
    assert (settings.model_name, settings.model_alias) == (DEFAULT_MODEL_NAME, PRODUCTION_ALIAS)
    monkeypatch.setenv("FRAUD_MODEL_NAME", "other")
    assert ModelSettings().model_name == "other"


def test_tracking_uri_default_is_the_project_store_from_any_subfolder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(REPO_ROOT)
    at_root = TrackingSettings().tracking_uri
    monkeypatch.chdir(REPO_ROOT / "serving")
    assert TrackingSettings().tracking_uri == at_root == f"sqlite:///{REPO_ROOT / 'mlflow.db'}"


def test_project_root_is_the_nearest_folder_with_dvc_yaml(tmp_path: Path) -> None:
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert project_root(tmp_path / "a" / "b") == tmp_path
    assert project_root(tmp_path.parent) == REPO_ROOT  # outside any project: the checkout
