"""The MLflow Model Registry as the project sees it: versions, their tags, where aliases point."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from infra.tracking import configure_mlflow

if TYPE_CHECKING:
    from mlflow import MlflowClient


# Test-split metrics the pipeline stores as version tags, so `fraud models` and the API show them.
METRIC_TAGS = ("auprc", "roc_auc", "recall_at_p90")


class RegistryError(RuntimeError):
    """The registry lacks what was asked for; the message says what exists instead."""


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


def list_versions(model_name: str) -> list[VersionSummary]:
    """Every version of ``model_name``, newest first; a missing model raises RegistryError."""
    from mlflow.exceptions import MlflowException

    client = _client()
    try:
        registered = client.get_registered_model(model_name)
    except MlflowException as exc:
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
    client.set_registered_model_alias(model_name, alias, str(version))
    return AliasMove(target=existing[version], previous=previous)
