"""The evaluation's pictures: drawn from the evaluate stage's own tables, saved as PNG, no
side effects at import time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from fraud.schema import FEATURE_COLUMNS, LABEL_COLUMN, feature_matrix
from fraud.split import chronological_split
from pipelines import evaluate as evaluate_stage
from pipelines.figures import (
    confusion_counts,
    confusion_matrix,
    cost_by_threshold,
    evaluation_figures,
    percent,
    save_png,
)
from pipelines.params import EvaluateParams
from tests.synthetic import synthetic_transactions

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NAMES = ("pr_curve", "roc_curve", "confusion", "cost_vs_threshold")


@pytest.fixture(scope="module")
def evaluated() -> tuple[dict[str, float], dict[str, pd.DataFrame]]:
    """The real evaluate() on a small model trained on synthetic transactions."""
    splits = chronological_split(
        synthetic_transactions(rows=3_000, fraud_rate=0.05, seed=3),
        train_fraction=0.6,
        valid_fraction=0.2,
    )
    data = xgb.DMatrix(
        feature_matrix(splits.train),
        label=splits.train[LABEL_COLUMN],
        feature_names=list(FEATURE_COLUMNS),
    )
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 3, "nthread": 1}, data, num_boost_round=20
    )
    params = EvaluateParams(review_cost=5.0, min_precision=0.9, bootstrap_samples=20, seed=0)
    return evaluate_stage.evaluate(booster, splits.valid, splits.test, params)


def texts(figure: Figure) -> list[str]:
    return [text.get_text() for text in figure.axes[0].texts]


def test_one_figure_per_table_titled_with_its_metric(
    evaluated: tuple[dict[str, float], dict[str, pd.DataFrame]],
) -> None:
    metrics, plots = evaluated
    figures = evaluation_figures(plots, metrics)

    assert tuple(figures) == NAMES == tuple(plots)
    titles = {name: figure.axes[0].get_title() for name, figure in figures.items()}
    assert titles["pr_curve"].endswith(f"AUPRC {metrics['auprc']:.3f}")
    assert titles["roc_curve"].endswith(f"ROC-AUC {metrics['roc_auc']:.3f}")
    assert f"{metrics['threshold']:.3f}" in titles["confusion"]


def test_curves_plot_exactly_the_tables_points(
    evaluated: tuple[dict[str, float], dict[str, pd.DataFrame]],
) -> None:
    metrics, plots = evaluated
    figures = evaluation_figures(plots, metrics)

    pr_line = figures["pr_curve"].axes[0].lines[0]
    assert np.array_equal(pr_line.get_xdata(), plots["pr_curve"]["recall"])
    assert np.array_equal(pr_line.get_ydata(), plots["pr_curve"]["precision"])
    roc_line = figures["roc_curve"].axes[0].lines[0]
    assert np.array_equal(roc_line.get_xdata(), plots["roc_curve"]["fpr"])
    assert np.array_equal(roc_line.get_ydata(), plots["roc_curve"]["tpr"])
    valid_line, test_line, chosen = figures["cost_vs_threshold"].axes[0].lines
    assert np.array_equal(valid_line.get_ydata(), plots["cost_vs_threshold"]["valid_cost"])
    assert np.array_equal(test_line.get_ydata(), plots["cost_vs_threshold"]["test_cost"])
    assert np.array_equal(chosen.get_xdata(), [metrics["threshold"]] * 2)


def test_confusion_cells_are_the_stage_metrics(
    evaluated: tuple[dict[str, float], dict[str, pd.DataFrame]],
) -> None:
    metrics, plots = evaluated
    counts = confusion_counts(plots["confusion"])

    assert counts.loc["fraud", "fraud"] == metrics["true_positives"]
    assert counts.loc["legit", "fraud"] == metrics["false_positives"]
    assert counts.loc["fraud", "legit"] == metrics["false_negatives"]
    assert int(counts.to_numpy().sum()) == len(plots["confusion"])
    shown = texts(confusion_matrix(plots["confusion"], metrics["threshold"]))
    assert [line.split("\n")[0] for line in shown] == [
        f"{count:,}" for count in counts.to_numpy().ravel()
    ]


def test_confusion_counts_fill_absent_cells_with_zero() -> None:
    table = pd.DataFrame({"actual": ["legit", "legit", "fraud"], "predicted": ["legit"] * 3})
    counts = confusion_counts(table)
    assert counts.to_dict() == {
        "legit": {"legit": 2, "fraud": 1},
        "fraud": {"legit": 0, "fraud": 0},
    }
    assert texts(confusion_matrix(table)) == [
        "2\n100% of legit",
        "0\n0% of legit",
        "1\n100% of fraud",
        "0\n0% of fraud",
    ]


def test_small_shares_keep_their_digits() -> None:
    assert percent(6 / 56_887) == "0.0105%"
    assert percent(55 / 75) == "73.3%"
    assert percent(1.0) == "100%"


def test_cost_figure_without_a_threshold_draws_no_marker() -> None:
    table = pd.DataFrame({"threshold": [0.1, 0.5], "valid_cost": [3.0, 2.0], "test_cost": [4, 1]})
    lines = cost_by_threshold(table).axes[0].lines
    assert len(lines) == 2 and all(isinstance(line, Line2D) for line in lines)


def test_png_files_are_written_and_reproducible(
    evaluated: tuple[dict[str, float], dict[str, pd.DataFrame]], tmp_path: Path
) -> None:
    metrics, plots = evaluated
    first = save_png(evaluation_figures(plots, metrics), tmp_path / "a")
    second = save_png(evaluation_figures(plots, metrics), tmp_path / "b")

    assert [path.name for path in first] == [f"{name}.png" for name in NAMES]
    for one, other in zip(first, second, strict=True):
        content = one.read_bytes()
        assert content.startswith(PNG_MAGIC)
        assert b"matplotlib version" not in content, "no version stamp: DVC hashes the bytes"
        assert content == other.read_bytes(), "the same data gives the same bytes"


def test_write_reports_puts_tables_and_pictures_side_by_side(
    evaluated: tuple[dict[str, float], dict[str, pd.DataFrame]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    metrics, plots = evaluated
    monkeypatch.chdir(tmp_path)  # the stage's paths are relative to the project root

    tables, pictures = evaluate_stage.write_reports(metrics, plots)

    assert sorted(p.name for p in tables) == sorted(f"{name}.csv" for name in NAMES)
    assert sorted(p.name for p in pictures) == sorted(f"{name}.png" for name in NAMES)
    assert {p.parent for p in [*tables, *pictures]} == {Path("reports/plots")}
    assert all((tmp_path / p).is_file() for p in [*tables, *pictures])


def test_importing_the_stage_draws_nothing_and_picks_no_backend() -> None:
    code = (
        "import sys, matplotlib, pipelines.evaluate, pipelines.figures\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'\n"
        "assert matplotlib.rcParams._get_backend_or_none() is None, 'a backend was chosen'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
