"""`fraud`: the one command line in front of every user action."""

from __future__ import annotations

import datetime as dt
import os
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from pipelines.tracking import TrackingSettings
from serving.registry import RegistryError, RegistrySettings, list_versions, set_alias

app = typer.Typer(
    help="Real-time credit-card fraud detection: registry, serving and operations.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

ModelName = Annotated[
    str | None,
    typer.Option(
        "--model", help="Registered model name (default: FRAUD_MODEL_NAME, else fraud-detector)."
    ),
]


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code=1)


def _short(value: str | None) -> str:
    try:
        return f"{float(value):.4f}" if value is not None else "-"
    except ValueError:
        return value or "-"


@app.command()
def models(model: ModelName = None) -> None:
    """List the registered model's versions with their aliases, key metrics and threshold."""
    name = model or RegistrySettings().model_name
    try:
        versions = list_versions(name)
    except RegistryError as exc:
        raise _fail(str(exc)) from None
    table = Table(title=f"{name} in {TrackingSettings().tracking_uri}")
    for column in (
        "ver",
        "aliases",
        "registered (UTC)",
        "AUPRC",
        "ROC-AUC",
        "R@P90",
        "threshold",
        "gates",
    ):
        table.add_column(column, no_wrap=True)
    for v in versions:
        registered = dt.datetime.fromtimestamp(v.created_ms / 1000, tz=dt.UTC)
        table.add_row(
            str(v.version),
            ", ".join(v.aliases) or "-",
            registered.strftime("%Y-%m-%d %H:%M"),
            *(
                _short(v.tags.get(key))
                for key in ("auprc", "roc_auc", "recall_at_p90", "threshold")
            ),
            v.tags.get("quality_gates", "-"),
        )
    # Not a terminal (a pipe, CI logs): rich would squeeze the table into 80 columns.
    Console(soft_wrap=True, width=max(console.width, 110)).print(table)


@app.command()
def promote(
    version: Annotated[
        int, typer.Option("--version", "-v", help="Model version to point the alias at.", min=1)
    ],
    alias: Annotated[str, typer.Option("--alias", "-a", help="Alias to move.")] = "Production",
    model: ModelName = None,
) -> None:
    """Point an alias (default: Production) at a registered version, as the MLflow UI does."""
    name = model or RegistrySettings().model_name
    try:
        move = set_alias(name, version, alias)
    except RegistryError as exc:
        raise _fail(str(exc)) from None
    if move.target.tags.get("quality_gates") == "failed":
        err_console.print(
            f"[yellow]warning:[/] version {version} failed the pipeline's quality gates "
            "(see `fraud models`); promoted as asked.",
            highlight=False,
        )
    was = f" (was version {move.previous})" if move.previous is not None else " (was unset)"
    console.print(f"{name}@{alias} -> version {version}{was}")


@app.command("mlflow")
def mlflow_server(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 5000,
    workers: Annotated[int, typer.Option(help="Web workers; one serves a person's UI.", min=1)] = 1,
) -> None:
    """Start the MLflow tracking server and UI over the project's store (MLFLOW_TRACKING_URI)."""
    store = TrackingSettings().tracking_uri
    if store.startswith(("http://", "https://")):
        raise _fail(
            f"MLFLOW_TRACKING_URI is {store}, already a server; "
            "point it at a database (e.g. sqlite:///mlflow.db) to serve that store."
        )
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", store, "--host", host, "--port", str(port),
        "--workers", str(workers),
    ]  # fmt: skip
    err_console.print(f"MLflow UI on http://{host}:{port} over {store}")
    sys.stdout.flush()
    os.execv(sys.executable, command)


if __name__ == "__main__":
    app()
