"""The registry's logins (FRAUD_MLFLOW_AUTH): their settings, the auth app's configuration file,
which interfaces need them, and what a refused client is told. The server itself, its accounts
and its refusals are in tests/integration/test_registry_auth.py."""

from __future__ import annotations

import configparser
import os
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from cli.app import app
from cli.stack import reader_login
from infra.registry import EDITOR_LOGIN, access_problem
from infra.registry_auth import is_loopback, render_auth_config, write_auth_config
from infra.settings import RegistryAuthSettings

PASSWORDS = {
    "FRAUD_MLFLOW_EDITOR_PASSWORD": "editor-password-1",
    "FRAUD_MLFLOW_READER_PASSWORD": "reader-password-1",
}


@pytest.fixture(autouse=True)
def no_login_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("FRAUD_MLFLOW_", "MLFLOW_TRACKING_")):
            monkeypatch.delenv(name)


def problems(error: ValidationError) -> dict[str, str]:
    return {f"FRAUD_{str(e['loc'][0]).upper()}": e["msg"] for e in error.errors()}


def test_off_by_default_and_then_no_password_is_needed() -> None:
    settings = RegistryAuthSettings()
    assert not settings.mlflow_auth
    assert (settings.mlflow_editor_username, settings.mlflow_reader_username) == (
        "editor",
        "reader",
    )
    assert settings.mlflow_auth_database_uri.endswith("/mlflow-auth.db")


def test_on_it_needs_both_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUD_MLFLOW_AUTH", "true")
    monkeypatch.setenv("FRAUD_MLFLOW_READER_PASSWORD", "")  # compose's `${VARIABLE:-}`
    with pytest.raises(ValidationError) as refused:
        RegistryAuthSettings()
    assert set(problems(refused.value)) == set(PASSWORDS)
    assert all("FRAUD_MLFLOW_AUTH" in message for message in problems(refused.value).values())
    for name, value in PASSWORDS.items():
        monkeypatch.setenv(name, value)
    settings = RegistryAuthSettings()
    assert settings.mlflow_auth and settings.mlflow_reader_password is not None
    assert settings.mlflow_reader_password.get_secret_value() == "reader-password-1"
    assert "reader-password-1" not in repr(settings)


def test_passwords_mlflow_would_refuse_and_one_account_for_both_roles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FRAUD_MLFLOW_AUTH", "true")
    monkeypatch.setenv("FRAUD_MLFLOW_EDITOR_PASSWORD", "eleven-char")
    monkeypatch.setenv("FRAUD_MLFLOW_READER_PASSWORD", "reader-password-1")
    monkeypatch.setenv("FRAUD_MLFLOW_READER_USERNAME", "editor")
    with pytest.raises(ValidationError) as refused:
        RegistryAuthSettings()
    found = problems(refused.value)
    assert set(found) == {"FRAUD_MLFLOW_EDITOR_PASSWORD", "FRAUD_MLFLOW_READER_USERNAME"}
    assert "12 characters" in found["FRAUD_MLFLOW_EDITOR_PASSWORD"]
    assert "FRAUD_MLFLOW_EDITOR_USERNAME" in found["FRAUD_MLFLOW_READER_USERNAME"]


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.20", False),
        ("mlflow.example.org", False),
    ],
)
def test_which_interfaces_stay_on_this_machine(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_the_auth_config_reads_back_as_mlflow_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in PASSWORDS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FRAUD_MLFLOW_AUTH", "true")
    monkeypatch.setenv("FRAUD_MLFLOW_EDITOR_USERNAME", "ops%admin")
    monkeypatch.setenv("FRAUD_MLFLOW_AUTH_DATABASE_URI", "postgresql://u:p%40ss@db/auth")
    settings = RegistryAuthSettings()
    path = tmp_path / "run" / "mlflow-auth.ini"
    path.parent.mkdir()
    path.write_text("stale\n")
    path.chmod(0o644)
    write_auth_config(settings, path)
    assert path.stat().st_mode & 0o777 == 0o600
    parser = configparser.ConfigParser()  # MLflow's reader: default interpolation
    parser.read(path)
    section = parser["mlflow"]
    assert section["default_permission"] == "READ"
    assert section["admin_username"] == "ops%admin"
    assert section["database_uri"] == "postgresql://u:p%40ss@db/auth"
    assert int(section["auth_cache_ttl_seconds"]) > 0
    assert "admin_password" not in section
    assert "password-1" not in render_auth_config(settings)


class RefusedError(Exception):
    def __init__(self, error_code: str) -> None:
        super().__init__(error_code)
        self.error_code = error_code


def test_a_refused_client_is_told_which_login_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    uri = "http://mlflow:5000"
    anonymous = access_problem(RefusedError("UNAUTHENTICATED"), uri)
    assert anonymous is not None
    assert "asks for a login" in anonymous and "MLFLOW_TRACKING_USERNAME" in anonymous
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "reader")
    wrong = access_problem(RefusedError("UNAUTHENTICATED"), uri)
    assert wrong is not None and "refused the login of 'reader'" in wrong
    denied = access_problem(RefusedError("PERMISSION_DENIED"), uri, EDITOR_LOGIN)
    assert denied is not None
    assert "does not let 'reader'" in denied and "FRAUD_MLFLOW_EDITOR_USERNAME" in denied
    assert access_problem(RefusedError("RESOURCE_DOES_NOT_EXIST"), uri) is None
    assert access_problem(ValueError("no error code"), uri) is None


def test_the_stacks_serving_parts_log_in_as_the_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in PASSWORDS.items():
        monkeypatch.setenv(name, value)
    assert reader_login() == {}  # FRAUD_MLFLOW_AUTH off: the stack's server asks for none
    monkeypatch.setenv("FRAUD_MLFLOW_AUTH", "true")
    assert reader_login() == {
        "MLFLOW_TRACKING_USERNAME": "reader",
        "MLFLOW_TRACKING_PASSWORD": "reader-password-1",
    }


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20"])
def test_fraud_mlflow_does_not_leave_loopback_without_logins(host: str) -> None:
    result = CliRunner().invoke(app, ["mlflow", "--host", host])
    assert result.exit_code == 1
    assert "FRAUD_MLFLOW_AUTH=true" in result.output and f"--host {host}" in result.output


def test_fraud_mlflow_names_the_missing_password() -> None:
    env = {"FRAUD_MLFLOW_AUTH": "true", "FRAUD_MLFLOW_EDITOR_PASSWORD": "editor-password-1"}
    result = CliRunner().invoke(app, ["mlflow"], env=env)
    assert result.exit_code == 1
    assert "FRAUD_MLFLOW_READER_PASSWORD" in result.output
    assert "FRAUD_MLFLOW_EDITOR_PASSWORD" not in result.output
