"""MonitorSettings and `fraud monitor`'s start: defaults, and a bad value named in one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from cli.app import app
from infra.paths import project_root
from infra.settings import MonitorSettings

MONITOR_VARIABLES = (
    "FRAUD_MONITOR_GROUP_ID", "FRAUD_MONITOR_WINDOW_SIZE", "FRAUD_MONITOR_RUN_EVERY",
    "FRAUD_MONITOR_RUN_SECONDS", "FRAUD_MONITOR_MIN_ALERT_VOLUME", "FRAUD_MONITOR_METRICS_HOST",
    "FRAUD_MONITOR_METRICS_PORT", "FRAUD_MONITOR_REPORTS_DIR", "FRAUD_MONITOR_REPORTS_KEEP",
    "FRAUD_MONITOR_CPU_IDLE",
)  # fmt: skip


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for variable in MONITOR_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    return monkeypatch


def test_defaults_follow_the_contract(clean: pytest.MonkeyPatch) -> None:
    settings = MonitorSettings()
    assert settings.monitor_group_id == "fraud-monitor"
    # None: the window and cadence the loaded baseline was calibrated for.
    assert settings.monitor_window_size is None and settings.monitor_run_every is None
    assert settings.monitor_run_seconds == 30.0
    assert settings.monitor_min_alert_volume is None
    assert (settings.monitor_metrics_host, settings.monitor_metrics_port) == ("127.0.0.1", 8002)
    assert settings.monitor_reports_keep == 20 and settings.monitor_cpu_idle is True
    assert settings.reports_dir == project_root() / "reports" / "drift"
    assert settings.topic_transactions == "transactions"  # the shared Kafka settings


def test_the_environment_sets_them(clean: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean.setenv("FRAUD_MONITOR_WINDOW_SIZE", "500")
    clean.setenv("FRAUD_MONITOR_RUN_EVERY", "50")
    clean.setenv("FRAUD_MONITOR_REPORTS_DIR", str(tmp_path))
    clean.setenv("FRAUD_MONITOR_MIN_ALERT_VOLUME", "")  # compose's `${VAR:-}`: unset
    settings = MonitorSettings()
    assert (settings.monitor_window_size, settings.monitor_run_every) == (500, 50)
    assert settings.monitor_min_alert_volume is None
    assert settings.reports_dir == tmp_path


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("monitor_window_size", 0),
        ("monitor_run_every", -1),
        ("monitor_run_seconds", 0),
        ("monitor_metrics_port", 70000),
        ("monitor_reports_keep", -1),
        ("monitor_session_timeout_ms", 1000),
        ("monitor_group_id", ""),
    ],
)
def test_bad_values_are_refused(clean: pytest.MonkeyPatch, field: str, value: object) -> None:
    given: dict[str, Any] = {field: value}
    with pytest.raises(ValidationError):
        MonitorSettings(**given)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("FRAUD_MONITOR_WINDOW_SIZE", "0"),
        ("FRAUD_MONITOR_RUN_SECONDS", "soon"),
        ("FRAUD_MONITOR_METRICS_PORT", "70000"),
        ("FRAUD_MONITOR_CPU_IDLE", "-5"),
        ("FRAUD_MODEL_POLL_SECONDS", "0"),
        ("FRAUD_KAFKA_BOOTSTRAP", "nohostport"),
    ],
)
def test_a_bad_setting_stops_fraud_monitor_naming_it(
    clean: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    result = CliRunner().invoke(app, ["monitor"], env={variable: value})
    assert result.exit_code == 1, result.output
    assert variable in result.output
    assert "Traceback" not in result.output


def test_a_bad_option_is_named_too(clean: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(app, ["monitor", "--run-every", "0"])
    assert result.exit_code == 1
    assert "FRAUD_MONITOR_RUN_EVERY" in result.output
