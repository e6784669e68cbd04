"""DVC stage `prepare`: validate the raw data, split it by time, and write the drift baseline."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
from rich.console import Console

from fraud.schema import (
    LABEL_COLUMN,
    RAW_COLUMNS,
    TIME_COLUMN,
    DataValidationError,
    validate_raw_frame,
)
from fraud.split import Splits, chronological_split
from infra.paths import DATASET_FILE, MANIFEST_FILE, PROCESSED_DIR, REFERENCE_FILE
from pipelines.params import PrepareParams, load_params
from pipelines.stage import StageError, run_stage

console = Console(stderr=True, soft_wrap=True)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def read_raw(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise StageError(f"{path} does not exist; run the fetch stage first (`dvc repro fetch`).")
    try:
        frame = pd.read_csv(path, engine="pyarrow")
    except Exception as exc:  # pyarrow raises several unrelated types for unreadable CSV
        raise StageError(f"{path} is not a readable CSV file: {exc}") from exc
    try:
        validate_raw_frame(frame, source=str(path))
    except DataValidationError as exc:
        raise StageError(str(exc)) from exc
    return frame.astype({c: "float64" for c in RAW_COLUMNS if c != LABEL_COLUMN}).astype(
        {LABEL_COLUMN: "int8"}
    )


def reference_sample(train: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """A random sample of the training split: what "normal" traffic looks like for drift checks."""
    sample = train.sample(n=min(rows, len(train)), random_state=seed)
    return sample.sort_values(TIME_COLUMN, kind="stable").reset_index(drop=True)


def describe(splits: Splits) -> dict[str, dict[str, float]]:
    return {
        name: {
            "rows": len(part),
            "frauds": int(part[LABEL_COLUMN].sum()),
            "time_min": float(part[TIME_COLUMN].min()),
            "time_max": float(part[TIME_COLUMN].max()),
        }
        for name, part in (("train", splits.train), ("valid", splits.valid), ("test", splits.test))
    }


def prepare(raw_file: Path, params: PrepareParams) -> dict[str, object]:
    frame = read_raw(raw_file)
    try:
        splits = chronological_split(
            frame, train_fraction=params.train_fraction, valid_fraction=params.valid_fraction
        )
    except ValueError as exc:
        raise StageError(f"cannot split {raw_file}: {exc}") from exc
    PROCESSED_DIR.mkdir(parents=True, exist_ok=True)
    REFERENCE_FILE.parent.mkdir(parents=True, exist_ok=True)
    splits.train.to_parquet(PROCESSED_DIR / "train.parquet", index=False)
    splits.valid.to_parquet(PROCESSED_DIR / "valid.parquet", index=False)
    splits.test.to_parquet(PROCESSED_DIR / "test.parquet", index=False)
    reference_sample(splits.train, params.reference_rows, params.seed).to_parquet(
        REFERENCE_FILE, index=False
    )
    manifest: dict[str, object] = {"data_sha256": sha256_of(raw_file), "splits": describe(splits)}
    MANIFEST_FILE.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main() -> None:
    manifest = prepare(DATASET_FILE, load_params().prepare)
    splits = manifest["splits"]
    assert isinstance(splits, dict)
    for name, info in splits.items():
        console.print(f"prepare: {name:5} {info['rows']:>7,} rows, {info['frauds']:>4} frauds")


if __name__ == "__main__":
    run_stage(main)
