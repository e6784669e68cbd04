"""Every `fraud` command documents itself."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli.app import app

COMMANDS = [
    "models", "promote", "mlflow", "score", "monitor", "api", "replay", "tail", "kafka", "up",
    "down", "status", "label", "compare",
]  # fmt: skip


def test_top_level_help_lists_every_command() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_command_has_help(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output and "--help" in result.output


def test_promote_rejects_a_version_below_one() -> None:
    result = CliRunner().invoke(app, ["promote", "--version", "0"])
    assert result.exit_code == 2
    assert "--version" in result.output


@pytest.mark.parametrize(
    ("variable", "value"),
    [("FRAUD_API_MAX_BATCH", "zero"), ("FRAUD_API_PORT", "70000"), ("FRAUD_API_WORKERS", "0")],
)
def test_a_bad_api_setting_stops_fraud_api_naming_it(variable: str, value: str) -> None:
    result = CliRunner().invoke(app, ["api"], env={variable: value})
    assert result.exit_code == 1
    assert variable in result.output
