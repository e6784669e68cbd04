"""monitoring.follower: the baseline follows the alias; a failure keeps the one in use."""

from __future__ import annotations

import logging

import pytest

from infra.settings import ModelSettings
from monitoring.baseline_store import VersionBaseline
from monitoring.drift import BaselineError
from monitoring.follower import BaselineFollower
from monitoring.instruments import MonitorMetrics
from tests.unit.monitor_fakes import version_baseline


class Registry:
    """Where the alias points, and which versions have a baseline."""

    def __init__(self) -> None:
        self.alias: str | None = "1"
        self.broken: set[str] = set()
        self.downloads: list[str] = []

    def resolve(self, name: str, alias: str) -> tuple[str, str]:
        if self.alias is None:
            raise RuntimeError(f"Registered model alias {alias} not found.\nmore lines")
        return self.alias, f"run-{self.alias}"

    def download(self, name: str, version: str, run_id: str) -> VersionBaseline:
        self.downloads.append(version)
        if version in self.broken:
            raise BaselineError(f"{name} version {version} (run {run_id}) has no drift baseline")
        return version_baseline(version)


def info(metrics: MonitorMetrics) -> list[dict[str, str]]:
    return [
        s.labels
        for family in metrics.registry.collect()
        if family.name == "fraud_monitor_baseline_info"
        for s in family.samples
    ]


def version(follower: BaselineFollower) -> str | None:
    return None if follower.current is None else follower.current.version


def follower_for(registry: Registry, metrics: MonitorMetrics) -> BaselineFollower:
    return BaselineFollower(
        ModelSettings(model_poll_seconds=60), metrics, resolve=registry.resolve,
        download=registry.download,
    )  # fmt: skip


def test_it_loads_once_and_again_only_when_the_alias_moves() -> None:
    registry, metrics = Registry(), MonitorMetrics()
    follower = follower_for(registry, metrics)
    assert version(follower) is None
    assert follower.refresh() == "success"
    assert version(follower) == "1"
    assert info(metrics) == [
        {"model_name": "fraud-detector", "model_version": "1", "run_id": "run-1"}
    ]
    assert follower.refresh() == "unchanged"
    registry.alias = "2"
    assert follower.refresh() == "success"
    assert version(follower) == "2"
    assert registry.downloads == ["1", "2"]
    assert [labels["model_version"] for labels in info(metrics)] == ["2"]


def test_a_failure_keeps_the_baseline_in_use_and_says_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry, metrics = Registry(), MonitorMetrics()
    follower = follower_for(registry, metrics)
    registry.alias = None
    with caplog.at_level(logging.WARNING):
        assert follower.refresh() == "failure"
    assert version(follower) is None
    assert follower.last_error is not None
    assert "cannot resolve fraud-detector@production" in follower.last_error
    assert "none loaded yet" in follower.last_error and "more lines" not in follower.last_error

    registry.alias = "1"
    follower.refresh()
    registry.alias, registry.broken = "3", {"3"}
    assert follower.refresh() == "failure"
    assert version(follower) == "1"
    assert "version 3" in (follower.last_error or "")
    assert "keeping version 1's" in (follower.last_error or "")
    assert "has no drift baseline" in caplog.text
    assert [labels["model_version"] for labels in info(metrics)] == ["1"]
    registry.broken = set()
    assert follower.refresh() == "success" and follower.last_error is None
