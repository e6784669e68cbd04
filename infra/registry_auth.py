"""Logins to the MLflow server: MLflow's own basic-auth app, with two accounts.

The editor is the auth app's admin: it registers versions and moves aliases (the pipeline,
`fraud promote`, a person in the UI). The reader can read every run, version and artifact but
change nothing (the scorer, the API, the monitor): the app's default permission is READ, and the
reader is given no grant of its own. Both accounts come from the settings (RegistryAuthSettings)
and are written into the user store before the server starts, every time it starts: a new
password in the environment replaces the stored one, and an account is (again) admin or not as
its role says.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from infra.settings import RegistryAuthSettings

# What the auth app grants on every resource nobody was given a permission on.
DEFAULT_PERMISSION = "READ"
AUTHORIZATION_FUNCTION = "mlflow.server.auth:authenticate_request_basic_auth"
# How long a worker trusts a login it has checked. Unset, MLflow checks the password hash (scrypt,
# ~0.16 s of CPU) several times per request: 0.4 s per call on a 2-core machine, which a page of
# the UI or a serving poll makes a dozen of. A password changed through MLflow's user API may
# keep working on another worker for this long; `fraud mlflow` restarts clear it.
AUTH_CACHE_SECONDS = 60
LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


class RegistryAuthError(RuntimeError):
    """The user store could not be prepared; the message says what to fix."""


def is_loopback(host: str) -> bool:
    """Whether a server listening on `host` is reachable from this machine only."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: whatever it resolves to may change


def _ini_value(value: str) -> str:
    # MLflow reads the file with configparser's default interpolation, where `%` is special.
    if "\n" in value or "\r" in value:
        raise RegistryAuthError(
            f"a line break cannot be written to the auth configuration: {value!r}"
        )
    return value.replace("%", "%%")


def render_auth_config(settings: RegistryAuthSettings) -> str:
    """The configuration MLflow's auth app reads from MLFLOW_AUTH_CONFIG_PATH. No password: the
    accounts exist before the server starts (ensure_accounts), so MLflow never bootstraps one."""
    lines = [
        "# Written by `fraud mlflow` at every start from the FRAUD_MLFLOW_* settings.",
        "[mlflow]",
        f"default_permission = {DEFAULT_PERMISSION}",
        f"database_uri = {_ini_value(settings.mlflow_auth_database_uri)}",
        f"admin_username = {_ini_value(settings.mlflow_editor_username)}",
        f"authorization_function = {AUTHORIZATION_FUNCTION}",
        "grant_default_workspace_access = false",
        f"auth_cache_ttl_seconds = {AUTH_CACHE_SECONDS}",
    ]
    return "\n".join(lines) + "\n"


def write_auth_config(settings: RegistryAuthSettings, path: Path) -> Path:
    """Write the configuration to `path`, readable by this user only (its database URI may
    carry a database password)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        os.fchmod(file.fileno(), 0o600)  # a file that existed keeps its mode otherwise
        file.write(render_auth_config(settings))
    return path


@dataclass(frozen=True)
class Account:
    role: str  # "editor" or "reader"
    username: str
    password: str
    is_admin: bool


def accounts(settings: RegistryAuthSettings) -> list[Account]:
    if settings.mlflow_editor_password is None or settings.mlflow_reader_password is None:
        raise RegistryAuthError("set FRAUD_MLFLOW_EDITOR_PASSWORD and FRAUD_MLFLOW_READER_PASSWORD")
    return [
        Account(
            "editor",
            settings.mlflow_editor_username,
            settings.mlflow_editor_password.get_secret_value(),
            is_admin=True,
        ),
        Account(
            "reader",
            settings.mlflow_reader_username,
            settings.mlflow_reader_password.get_secret_value(),
            is_admin=False,
        ),
    ]


def ensure_accounts(settings: RegistryAuthSettings) -> list[str]:
    """Create or update the editor and the reader in the user store (MLflow's own store and
    migrations, as the server uses them); returns what changed, e.g. ["created reader 'reader'"].
    Accounts the settings no longer name are left as they are."""
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

    wanted = accounts(settings)
    store = SqlAlchemyStore()
    changes: list[str] = []
    try:
        store.init_db(settings.mlflow_auth_database_uri)  # type: ignore[no-untyped-call]
        try:
            for account in wanted:
                who = f"{account.role} '{account.username}'"
                if not store.has_user(account.username, use_primary=True):
                    store.create_user(account.username, account.password, is_admin=account.is_admin)
                    changes.append(f"created {who}")
                    continue
                if not store.authenticate_user(
                    account.username, account.password, use_primary=True
                ):
                    store.update_user(account.username, password=account.password)
                    changes.append(f"new password for {who}")
                if store.get_user(account.username).is_admin != account.is_admin:
                    store.update_user(account.username, is_admin=account.is_admin)
                    changes.append(f"{who} {'made' if account.is_admin else 'no longer'} admin")
        finally:
            store.engine.dispose()
    except Exception as exc:  # MLflow's or SQLAlchemy's: a database that is not there or refuses
        where = shown_uri(settings.mlflow_auth_database_uri)
        raise RegistryAuthError(
            f"could not prepare the MLflow user store {where} "
            f"({type(exc).__name__}: {_first_line(exc)}); check FRAUD_MLFLOW_AUTH_DATABASE_URI."
        ) from exc
    return changes


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def shown_uri(uri: str) -> str:
    """A database URI without its password, fit for a log line."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
