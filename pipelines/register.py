"""DVC stage `register`: add the trained model to the MLflow Model Registry.

Every run registers a new version of the model with its threshold, quality metrics, data
checksum and code commit as tags. The "challenger" alias moves to it only when the quality gates
in params.yaml pass; "production" moves only when `register.promote` is true as well, since
promoting is otherwise a person's decision (MLflow UI or `fraud promote`).
reports/registered.json is not DVC-cached, so DVC's run cache cannot skip the registration.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console

from infra.paths import METRICS_FILE, REGISTERED_FILE, TRAIN_RUN_FILE
from infra.registry import METRIC_TAGS
from infra.settings import CHALLENGER_ALIAS, PRODUCTION_ALIAS, ModelSettings
from infra.tracking import configure_mlflow
from pipelines.params import RegisterParams, load_params
from pipelines.stage import read_json, run_stage, write_json

console = Console(stderr=True, soft_wrap=True)


def failed_gates(metrics: dict[str, float], params: RegisterParams) -> list[str]:
    """Each quality gate the metrics miss, as a sentence; empty when all pass."""
    return [
        f"{name} {metrics[name]:.4f} < {minimum:.4f} (register.min_{name})"
        for name, minimum in _gates(params)
        if metrics[name] < minimum
    ]


def _gates(params: RegisterParams) -> tuple[tuple[str, float], ...]:
    return (
        ("auprc", params.min_auprc),
        ("roc_auc", params.min_roc_auc),
        ("recall_at_p90", params.min_recall_at_p90),
    )


def version_tags(
    run: dict[str, Any], metrics: dict[str, float], params: RegisterParams
) -> dict[str, str]:
    """The version's threshold (exact), its test metrics, its data and code, and the quality
    gates it was held to (`gate_min_*`: the monitor alerts when live recall falls below
    `gate_min_recall_at_p90`)."""
    return {
        "threshold": repr(float(metrics["threshold"])),
        **{name: f"{metrics[name]:.6f}" for name in METRIC_TAGS},
        **{f"gate_min_{name}": repr(float(minimum)) for name, minimum in _gates(params)},
        "data_sha256": str(run["data_sha256"]),
        "git_commit": str(run["git_commit"]),
    }


def register(params: RegisterParams, model_name: str) -> dict[str, Any]:
    import mlflow
    from mlflow import MlflowClient

    run = read_json(TRAIN_RUN_FILE, "train")
    metrics = read_json(METRICS_FILE, "evaluate")
    failures = failed_gates(metrics, params)
    configure_mlflow()
    tags = version_tags(run, metrics, params) | {
        "quality_gates": "failed" if failures else "passed"
    }
    version = mlflow.register_model(run["model_uri"], model_name, tags=tags)
    client = MlflowClient()
    aliases: list[str] = []
    if not failures:
        aliases.append(CHALLENGER_ALIAS)
        if params.promote:
            aliases.append(PRODUCTION_ALIAS)
    for alias in aliases:
        client.set_registered_model_alias(model_name, alias, version.version)
    record = {
        "name": model_name,
        "version": int(version.version),
        "run_id": run["run_id"],
        "model_uri": run["model_uri"],
        "aliases": aliases,
        "quality_gates_failed": failures,
    }
    write_json(REGISTERED_FILE, record)
    return record


def main() -> None:
    record = register(load_params().registration, ModelSettings().model_name)
    where = f"{record['name']} version {record['version']}"
    if record["quality_gates_failed"]:
        console.print(
            f"[yellow]register: {where} registered without aliases; quality gates failed: "
            f"{'; '.join(record['quality_gates_failed'])}[/]",
            highlight=False,
        )
    else:
        console.print(f"register: {where} registered, aliases: {', '.join(record['aliases'])}")


if __name__ == "__main__":
    run_stage(main)
