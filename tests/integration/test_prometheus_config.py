"""The repo's Prometheus configuration and alert rules, checked by Prometheus's own promtool
(Debian's `prometheus` package): syntax, and unit tests that make every alert fire and not fire."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.dashboards import monitor_series

PROMETHEUS_DIR = Path(__file__).resolve().parents[2] / "monitoring" / "prometheus"
RULE_FILES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*_test.yml"))


def promtool(*arguments: str) -> str:
    binary = shutil.which("promtool")
    assert binary, "promtool is missing: `make system-deps` installs Debian's prometheus package"
    result = subprocess.run(
        [binary, *arguments], cwd=PROMETHEUS_DIR, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, (
        f"promtool {' '.join(arguments)}:\n{result.stdout}{result.stderr}"
    )
    return result.stdout


def test_config_is_valid() -> None:
    assert "SUCCESS" in promtool("check", "config", "prometheus.yml")


@pytest.mark.parametrize("config", ["prometheus.yml", "compose.yml"])
def test_every_rules_file_is_loaded(config: str) -> None:
    """Both configurations (native and compose) load every file of rules/, live.yml included."""
    patterns = yaml.safe_load((PROMETHEUS_DIR / config).read_text())["rule_files"]
    loaded = {path for pattern in patterns for path in PROMETHEUS_DIR.glob(pattern)}
    assert {path.name for path in RULE_FILES} >= {"drift.yml", "live.yml", "serving.yml"}
    assert set(RULE_FILES) - loaded == set()


@pytest.mark.parametrize("rules", RULE_FILES, ids=lambda p: p.name)
def test_rules_are_valid(rules: Path) -> None:
    assert "SUCCESS" in promtool("check", "rules", str(rules))


@pytest.mark.parametrize("tests", RULE_TESTS, ids=lambda p: p.name)
def test_rule_unit_tests_pass(tests: Path) -> None:
    assert "SUCCESS" in promtool("test", "rules", str(tests))


def test_every_alert_is_tested_firing_and_quiet() -> None:
    alerts = {
        rule["alert"]
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    fired: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                (fired if case["exp_alerts"] else quiet).add(case["alertname"])
    assert alerts, "no alert rules found"
    assert alerts - fired == set(), "alerts never tested firing"
    assert alerts - quiet == set(), "alerts never tested staying quiet"


def test_alerts_name_only_metrics_the_services_export() -> None:
    exported = set(
        re.findall(
            r'"(fraud_[a-z_]+)"',
            (PROMETHEUS_DIR.parents[1] / "serving" / "instruments.py").read_text(),
        )
    )
    assert exported, "no metric names found in serving/instruments.py"
    # The drift monitor's (rules/drift.yml, rules/live.yml): its drift and live instruments.
    exported |= {re.sub(r"_(total|bucket|sum|count)$", "", name) for name in monitor_series()}
    named: set[str] = set()
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                named |= set(re.findall(r"\b(fraud_[a-z_]+)", rule["expr"]))
    base = {re.sub(r"_(total|bucket|sum|count)$", "", name) for name in named}
    assert base - exported == set()
