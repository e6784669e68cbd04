"""Where the project's files are: the project root and what the pipeline writes under it.

The root is found the way DVC and git find theirs: the nearest folder, from the working
directory up, that holds `dvc.yaml`; failing that, the checkout this code runs from. So the
embedded MLflow store and the broker's data are the same ones from any subfolder.
DVC runs every stage from the root, which is why the stage outputs below are relative paths,
exactly as `dvc.yaml` names them.
"""

from __future__ import annotations

from pathlib import Path

PROJECT_MARKER = "dvc.yaml"


def project_root(start: Path | None = None) -> Path:
    """The nearest folder from `start` (default: the working directory) up holding dvc.yaml;
    else the source checkout holding this file; else `start` itself."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / PROJECT_MARKER).is_file():
            return folder
    checkout = Path(__file__).resolve().parents[1]
    return checkout if (checkout / PROJECT_MARKER).is_file() else here


PARAMS_FILE = Path("params.yaml")
DATASET_FILE = Path("data/raw/creditcard.csv")
PROCESSED_DIR = Path("data/processed")
MANIFEST_FILE = PROCESSED_DIR / "manifest.json"
TEST_SPLIT_FILE = PROCESSED_DIR / "test.parquet"
REFERENCE_FILE = Path("data/reference/reference.parquet")
MODEL_FILE = Path("data/model/model.ubj")
TRAIN_RUN_FILE = Path("reports/train_run.json")
METRICS_FILE = Path("reports/metrics.json")
PLOTS_DIR = Path("reports/plots")
REGISTERED_FILE = Path("reports/registered.json")
BASELINE_DIR = Path("data/baseline")
BASELINE_RUN_FILE = Path("reports/baseline.json")
