"""The MLflow Model Registry as the project sees it: versions, their tags, where aliases point."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from infra.tracking import configure_mlflow

if TYPE_CHECKING:
    from mlflow import MlflowClient


# Test-split metrics the pipeline stores as version tags, so `fraud models` and the API show them.
METRIC_TAGS = ("auprc", "roc_auc", "recall_at_p90")


# MLflow's client sends the login of these variables to a server that asks for one
# (FRAUD_MLFLOW_AUTH; README, "Authenticated registry").
LOGIN_VARIABLES = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
EDITOR_LOGIN = "the editor's login (FRAUD_MLFLOW_EDITOR_USERNAME and its password)"
ANY_LOGIN = "the reader's or the editor's login"


class RegistryError(RuntimeError):
    """The registry lacks what was asked for; the message says what exists instead."""


def access_problem(exc: BaseException, uri: str, needed: str = ANY_LOGIN) -> str | None:
    """What to fix when the MLflow server at `uri` refused a request for want of a login (401)
    or of a permission (403), naming the client variables; None for any other error. `needed`
    says which login the request needs."""
    code = getattr(exc, "error_code", None)
    user = os.environ.get(LOGIN_VARIABLES[0])
    variables = " and ".join(LOGIN_VARIABLES)
    if code == "UNAUTHENTICATED":
        if user:
            return (
                f"the MLflow server at {uri} refused the login of {user!r}: fix {variables} "
                f"({needed})."
            )
        return f"the MLflow server at {uri} asks for a login: set {variables} to {needed}."
    if code == "PERMISSION_DENIED":
        return (
            f"the MLflow server at {uri} does not let {user!r} do this: set {variables} to "
            f"{needed}."
        )
    return None


@dataclass(frozen=True)
class VersionSummary:
    version: int
    aliases: tuple[str, ...]
    created_ms: int
    run_id: str
    tags: dict[str, str]


def _client() -> MlflowClient:
    from mlflow import MlflowClient

    configure_mlflow()
    return MlflowClient()


def _refused(exc: Exception, client: MlflowClient, needed: str = ANY_LOGIN) -> None:
    """Raise RegistryError naming the login to set when the server refused the request, or
    naming the server when it did not answer."""
    problem = access_problem(exc, client.tracking_uri, needed)
    if problem is None and isinstance(exc.__context__, OSError):
        # MLflow's client wraps the requests error that a server not answering raises
        problem = (
            f"cannot reach the registry at {client.tracking_uri}: is the MLflow server "
            "running (`fraud mlflow`, or `fraud up`), and is MLFLOW_TRACKING_URI right?"
        )
    if problem is not None:
        raise RegistryError(problem) from exc


def list_versions(model_name: str) -> list[VersionSummary]:
    """Every version of ``model_name``, newest first; a missing model raises RegistryError."""
    from mlflow.exceptions import MlflowException

    client = _client()
    try:
        registered = client.get_registered_model(model_name)
    except MlflowException as exc:
        _refused(exc, client)
        raise RegistryError(
            f"no registered model named '{model_name}' in the registry; run the pipeline "
            "(`dvc repro`) to register one, or `dvc repro --force train` if DVC says it is up "
            "to date but this store is new."
        ) from exc
    aliases_of: dict[str, list[str]] = {}
    for alias, version in registered.aliases.items():
        aliases_of.setdefault(str(version), []).append(alias)
    versions = client.search_model_versions(f"name = '{model_name}'")
    return sorted(
        (
            VersionSummary(
                version=int(v.version),
                aliases=tuple(sorted(aliases_of.get(str(v.version), []))),
                created_ms=int(v.creation_timestamp or 0),
                run_id=v.run_id or "",
                tags=dict(v.tags),
            )
            for v in versions
        ),
        key=lambda s: s.version,
        reverse=True,
    )


@dataclass(frozen=True)
class AliasMove:
    target: VersionSummary
    previous: int | None  # the version the alias pointed at before; None if it was unset


def set_alias(model_name: str, version: int, alias: str) -> AliasMove:
    """Point ``alias`` at ``version`` of ``model_name``."""
    from mlflow.exceptions import MlflowException

    existing = {v.version: v for v in list_versions(model_name)}
    if version not in existing:
        known = ", ".join(str(v) for v in sorted(existing)) or "none"
        raise RegistryError(
            f"'{model_name}' has no version {version}; registered versions: {known}."
        )
    client = _client()
    try:
        previous: int | None = int(client.get_model_version_by_alias(model_name, alias).version)
    except MlflowException:
        previous = None
    try:
        client.set_registered_model_alias(model_name, alias, str(version))
    except MlflowException as exc:
        _refused(exc, client, EDITOR_LOGIN)
        raise
    return AliasMove(target=existing[version], previous=previous)
