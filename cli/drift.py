"""`fraud drift`: the monitor's drift computation once, offline, on a file of transactions."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from cli.errors import err_console, fail
from fraud.drift import DRIFT_FEATURES, FLAG_COLUMN, SCORE_COLUMN
from fraud.schema import TRANSACTION_COLUMNS, feature_matrix
from infra.paths import project_root
from infra.settings import ModelSettings

console = Console(soft_wrap=True)


class DriftCommandError(RuntimeError):
    """What the user must fix, as a sentence."""


def read_current(path: Path) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The transactions of a CSV or parquet file, and its scores when it has both
    `fraud_probability` and `is_fraud` columns (e.g. a dump of the predictions joined back)."""
    from serving.replay import ReplayError, read_transactions

    try:
        frame = read_transactions(path)
    except ReplayError as exc:
        raise DriftCommandError(str(exc)) from None
    scores = None
    if {SCORE_COLUMN, FLAG_COLUMN} <= set(frame.columns):
        scores = frame.loc[:, [SCORE_COLUMN, FLAG_COLUMN]].astype(
            {SCORE_COLUMN: "float64", FLAG_COLUMN: "bool"}
        )
    return frame.loc[:, list(TRANSACTION_COLUMNS)].astype("float64"), scores


CurrentFile = Annotated[
    Path,
    typer.Option(
        "--current",
        help="Transactions to check: CSV or parquet with Time, V1-V28 and Amount (and "
        "optionally fraud_probability and is_fraud).",
    ),
]
ReferenceFolder = Annotated[
    Path | None,
    typer.Option(
        "--reference",
        help="A drift baseline folder (data/baseline, as `dvc repro baseline` writes it). "
        "Default: the baseline of the version under FRAUD_MODEL_ALIAS (production), whose "
        "model also scores the transactions.",
    ),
]
ReportFile = Annotated[
    Path | None,
    typer.Option(help="Where to write the HTML report (default reports/drift/offline-*.html)."),
]


def run_drift(current: Path, reference: Path | None, report: Path | None) -> None:
    """`fraud drift` (cli/app.py): the monitor's computation once, the summary, the report."""
    from monitoring.baseline_store import download_baseline, resolve_alias
    from monitoring.drift import BaselineError, DriftBaseline, compute
    from monitoring.summary import drift_summary

    try:
        transactions, scores = read_current(current)
        model = ModelSettings()
        if reference is not None:
            folder = reference.parent if reference.is_file() else reference
            baseline = DriftBaseline.load(folder)
            source = {"name": "", "version": "", "run_id": "", "where": str(folder)}
        else:
            version, run_id = _resolve(model, resolve_alias)
            baseline = download_baseline(model.model_name, version, run_id).baseline
            source = {"name": model.model_name, "version": version, "run_id": run_id}
            source["where"] = f"{model.model_name} version {version} ({model.model_alias})"
            if scores is None:
                scores = _score_with(model, transactions)
    except (DriftCommandError, BaselineError) as exc:
        raise fail(str(exc)) from None
    if scores is None:
        err_console.print(
            "note: no scores, so no prediction drift or alert rate: add fraud_probability and "
            "is_fraud columns, or leave out --reference to score with the served model.",
            highlight=False,
        )
    started = time.perf_counter()
    thresholds = baseline.thresholds
    run = compute(
        baseline.reference, transactions, scores, seed=thresholds.seed, baseline=thresholds
    )
    assert run.verdict is not None
    summary = drift_summary(
        run.signals,
        run.verdict,
        thresholds,
        model_name=source["name"],
        model_version=source["version"],
        run_id=source["run_id"],
        computed_at=dt.datetime.now(dt.UTC),
        duration_seconds=time.perf_counter() - started,
        window_size=len(transactions),
    )
    path = report or _default_report_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(run.html())
    path.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    print_summary(summary, source["where"], len(transactions), thresholds.window_size)
    console.print(f"report: {path} (summary: {path.with_suffix('.json')})", highlight=False)


def _resolve(model: ModelSettings, resolve: Any) -> tuple[str, str]:
    from mlflow.exceptions import MlflowException

    try:
        version, run_id = resolve(model.model_name, model.model_alias)
    except MlflowException as exc:
        raise DriftCommandError(
            f"cannot resolve {model.model_name}@{model.model_alias} "
            f"({str(exc).splitlines()[0]}); promote a version (`fraud promote`) or pass "
            "--reference data/baseline"
        ) from None
    return str(version), str(run_id)


def _score_with(model: ModelSettings, transactions: pd.DataFrame) -> pd.DataFrame:
    from serving.model_holder import ModelHolder

    holder = ModelHolder(model)
    outcome = holder.refresh()
    loaded = holder.current
    if loaded is None:
        raise DriftCommandError(f"cannot load the model to score with: {outcome.reason}")
    probabilities = loaded.predict(feature_matrix(transactions)).astype(np.float64)
    return pd.DataFrame(
        {SCORE_COLUMN: probabilities, FLAG_COLUMN: probabilities >= loaded.threshold}
    )


def _default_report_path() -> Path:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return project_root() / "reports" / "drift" / f"offline-{stamp}.html"


def _figure(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_summary(summary: dict[str, Any], where: str, rows: int, calibrated: int) -> None:
    table = Table(
        title=f"Drift of {rows:,} transactions against {where}",
        caption="D: drift score over its limit; Q: out of range or top value over its limit",
    )
    columns = ("feature", "drift", "limit", "out of range", "limit", "top value", "limit", "")
    for column in columns:
        table.add_column(column, justify="left" if column == "feature" else "right")
    for name in DRIFT_FEATURES:
        f = summary["features"][name]
        marks = [
            mark
            for mark, names in (("D", "drifted_features"), ("Q", "quality_features"))
            if name in summary[names]
        ]
        table.add_row(
            name,
            _figure(f["drift_score"]),
            _figure(f["drift_threshold"]),
            _figure(f["out_of_range"], 4),
            _figure(f["out_of_range_threshold"], 4),
            _figure(f["top_value"], 4),
            _figure(f["top_value_threshold"], 4),
            " ".join(marks),
        )
    console.print(table)
    prediction, alerts = summary["prediction_drift"], summary["alert_rate"]
    console.print(
        f"drifted share {summary['drift_share']:.3f} (alarm at {summary['drift_share_threshold']}"
        f"); prediction drift {_figure(prediction['score'])} / {_figure(prediction['threshold'])}"
        f"; alert rate {_figure(alerts['rate'], 4)} / {_figure(alerts['threshold'], 4)} "
        f"(expected {alerts['expected']:.4f})",
        highlight=False,
    )
    if rows != calibrated:
        console.print(
            f"[yellow]note: the thresholds were calibrated on windows of {calibrated:,} "
            f"transactions; {rows:,} make the scores noisier (fewer) or steadier (more).[/]",
            highlight=False,
        )
    if summary["detected"]:
        console.print(
            f"[bold red]DRIFT DETECTED[/]: {'; '.join(summary['reasons'])}", highlight=False
        )
    else:
        console.print("[bold green]no drift[/]: every signal is under its threshold")
