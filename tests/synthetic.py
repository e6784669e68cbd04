"""A small synthetic stand-in for creditcard.csv, for tests only.

Same columns and dtypes as the real dataset; frauds are shifted in a few PCA components so a
model can learn them, and spread over the whole time range so every chronological split has
both classes. The pipeline never falls back to this: tests hand it over explicitly.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from fraud.schema import AMOUNT_COLUMN, LABEL_COLUMN, PCA_COLUMNS, RAW_COLUMNS, TIME_COLUMN

TWO_DAYS_SECONDS = 172_792.0


def synthetic_transactions(
    rows: int = 6_000, fraud_rate: float = 0.03, seed: int = 0
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    labels = (rng.random(rows) < fraud_rate).astype(np.int64)
    labels[:2] = (0, 1)  # both classes even for tiny samples
    features = rng.normal(size=(rows, len(PCA_COLUMNS)))
    shift = np.zeros(len(PCA_COLUMNS))
    shift[[2, 9, 11, 13, 16]] = (-2.5, -2.0, -2.5, -3.0, -2.0)  # V3, V10, V12, V14, V17
    features += np.outer(labels, shift) * rng.uniform(0.5, 1.5, size=(rows, 1))
    frame = pd.DataFrame(features, columns=list(PCA_COLUMNS))
    frame.insert(0, TIME_COLUMN, np.sort(rng.uniform(0, TWO_DAYS_SECONDS, rows)).round())
    frame[AMOUNT_COLUMN] = np.round(rng.lognormal(3.0, 1.2, rows), 2)
    frame[LABEL_COLUMN] = labels
    return frame.loc[:, list(RAW_COLUMNS)]


def write_synthetic_csv(
    path: Path, rows: int = 6_000, fraud_rate: float = 0.03, seed: int = 0
) -> str:
    """Write a synthetic creditcard.csv (quoted header, like the original); return its sha256."""
    frame = synthetic_transactions(rows=rows, fraud_rate=fraud_rate, seed=seed)
    header = ",".join(f'"{c}"' for c in RAW_COLUMNS)
    body = frame.to_csv(index=False, header=False, float_format="%.10g")
    path.write_text(f"{header}\n{body}")
    return hashlib.sha256(path.read_bytes()).hexdigest()
