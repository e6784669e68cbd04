"""Pictures of the evaluation: the PR curve, ROC curve, confusion matrix and cost by threshold.

Pure functions from the tables `pipelines.evaluate` computes (the same ones `dvc plots show`
draws) to matplotlib figures. They build `matplotlib.figure.Figure` objects directly rather
than through pyplot, so drawing selects no backend, opens no window and keeps no global state:
importing this module or the evaluate stage draws nothing, and saving a figure as PNG renders
it with Agg whatever backend the process has.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

CLASSES = ("legit", "fraud")
SIZE = (6.0, 4.5)
DPI = 100


def pr_curve(table: pd.DataFrame, auprc: float | None = None) -> Figure:
    """Precision against recall (columns `recall`, `precision`), with the AUPRC in the title."""
    figure = Figure(figsize=SIZE, layout="constrained")
    axes = figure.add_subplot()
    axes.plot(table["recall"], table["precision"], color="tab:blue")
    axes.set(xlabel="recall", ylabel="precision", xlim=(0, 1.01), ylim=(0, 1.02))
    axes.grid(alpha=0.3)
    suffix = f" — AUPRC {auprc:.3f}" if auprc is not None else ""
    axes.set_title(f"Precision-recall curve (test split){suffix}")
    return figure


def roc_curve(table: pd.DataFrame, roc_auc: float | None = None) -> Figure:
    """True- against false-positive rate (columns `fpr`, `tpr`), with the chance diagonal."""
    figure = Figure(figsize=SIZE, layout="constrained")
    axes = figure.add_subplot()
    axes.plot(table["fpr"], table["tpr"], color="tab:blue", label="model")
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    axes.set(xlabel="false-positive rate", ylabel="true-positive rate")
    axes.set(xlim=(0, 1), ylim=(0, 1.02))
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    suffix = f" — ROC-AUC {roc_auc:.3f}" if roc_auc is not None else ""
    axes.set_title(f"ROC curve (test split){suffix}")
    return figure


def confusion_counts(table: pd.DataFrame) -> pd.DataFrame:
    """The 2×2 counts from a row per transaction (columns `actual`, `predicted`, each "legit"
    or "fraud"): actual classes as rows, predicted as columns, absent cells as 0."""
    counts = pd.crosstab(table["actual"], table["predicted"])
    return counts.reindex(index=list(CLASSES), columns=list(CLASSES), fill_value=0)


def percent(share: float) -> str:
    """A share as a percentage with three significant digits: 6 false alarms in 56,887 legit
    transactions read 0.0105%, not 0.0%."""
    return f"{100 * share:.3g}%"


def confusion_matrix(table: pd.DataFrame, threshold: float | None = None) -> Figure:
    """The confusion matrix at the chosen threshold. Cells are shaded by their share of the
    actual class (a row), since the raw counts differ by three orders of magnitude."""
    counts = confusion_counts(table).to_numpy(dtype=np.int64)
    totals = counts.sum(axis=1)
    shares = counts / np.where(totals == 0, 1, totals)[:, None]
    figure = Figure(figsize=(5.0, 4.5), layout="constrained")
    axes = figure.add_subplot()
    axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    for row, actual in enumerate(CLASSES):
        for column in range(len(CLASSES)):
            share = shares[row, column]
            axes.text(
                column,
                row,
                f"{counts[row, column]:,}\n{percent(share)} of {actual}",
                ha="center",
                va="center",
                color="white" if share > 0.5 else "black",
            )
    axes.set_xticks(range(len(CLASSES)), labels=list(CLASSES))
    axes.set_yticks(range(len(CLASSES)), labels=list(CLASSES))
    axes.set(xlabel="predicted", ylabel="actual")
    suffix = f" {threshold:.3f}" if threshold is not None else ""
    axes.set_title(f"Confusion matrix at threshold{suffix} (test split)")
    return figure


def cost_by_threshold(table: pd.DataFrame, threshold: float | None = None) -> Figure:
    """Expected cost on validation and test by threshold (columns `threshold`, `valid_cost`,
    `test_cost`), with the threshold chosen on validation marked."""
    figure = Figure(figsize=SIZE, layout="constrained")
    axes = figure.add_subplot()
    axes.plot(table["threshold"], table["valid_cost"], label="validation split")
    axes.plot(table["threshold"], table["test_cost"], label="test split")
    if threshold is not None:
        axes.axvline(
            threshold, color="tab:red", linestyle="--", label=f"chosen threshold {threshold:.3f}"
        )
    axes.set(xlabel="threshold", ylabel="expected cost (Amount units)", xlim=(0, 1))
    axes.grid(alpha=0.3)
    axes.legend()
    axes.set_title("Expected cost by threshold")
    return figure


def evaluation_figures(
    plots: Mapping[str, pd.DataFrame], metrics: Mapping[str, float]
) -> dict[str, Figure]:
    """Every figure of the evaluation, named like the table it draws (`pr_curve`, …)."""
    threshold = metrics.get("threshold")
    return {
        "pr_curve": pr_curve(plots["pr_curve"], metrics.get("auprc")),
        "roc_curve": roc_curve(plots["roc_curve"], metrics.get("roc_auc")),
        "confusion": confusion_matrix(plots["confusion"], threshold),
        "cost_vs_threshold": cost_by_threshold(plots["cost_vs_threshold"], threshold),
    }


def save_png(figures: Mapping[str, Figure], folder: Path) -> list[Path]:
    """Write each figure as `<name>.png` in `folder`; returns the paths. No version stamp in
    the file, so the same data gives the same bytes (DVC hashes the folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, figure in figures.items():
        path = folder / f"{name}.png"
        figure.savefig(path, format="png", dpi=DPI, metadata={"Software": None})
        paths.append(path)
    return paths
