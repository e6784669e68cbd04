"""The holder's checks on a model folder, no registry: MLmodel, signature, booster, scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb
import yaml

from fraud.schema import FEATURE_COLUMNS
from serving.model_holder import (
    LoadedModel,
    ModelHolder,
    ModelLoadError,
    _load_booster,
    _threshold,
    validate_model,
)
from tests.harness import free_port
from tests.synthetic import synthetic_transactions


def train_booster(columns: list[str]) -> xgb.Booster:
    frame = synthetic_transactions(rows=500, seed=1)
    data = xgb.DMatrix(frame[columns], label=frame["Class"])
    return xgb.train({"objective": "binary:logistic", "max_depth": 2}, data, num_boost_round=5)


def model_folder(
    tmp_path: Path,
    *,
    columns: list[str] | None = None,
    signature: bool = True,
    flavor: bool = True,
    example: bool = True,
) -> Path:
    columns = columns or list(FEATURE_COLUMNS)
    train_booster(columns).save_model(str(tmp_path / "model.ubj"))
    mlmodel: dict[str, object] = {"flavors": {"python_function": {"data": "model.ubj"}}}
    if flavor:
        mlmodel["flavors"] = {"xgboost": {"data": "model.ubj", "model_format": "ubj"}}
    if signature:
        inputs = [{"type": "double", "name": c, "required": True} for c in columns]
        mlmodel["signature"] = {"inputs": json.dumps(inputs), "outputs": "[]"}
    if example:
        rows = synthetic_transactions(rows=3, seed=2)[columns].to_numpy().tolist()
        (tmp_path / "input_example.json").write_text(json.dumps({"columns": columns, "data": rows}))
    (tmp_path / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    return tmp_path


def test_a_logged_xgboost_model_loads_with_its_input_example(tmp_path: Path) -> None:
    booster, reference = _load_booster(model_folder(tmp_path), threads=1)
    assert len(reference) == 3
    assert list(booster.feature_names or []) == list(FEATURE_COLUMNS)


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        ({"signature": False}, "no input signature"),
        ({"flavor": False}, "xgboost flavor"),
        ({"columns": [c for c in FEATURE_COLUMNS if c != "Amount"]}, "differ from the expected"),
    ],
)
def test_a_model_that_does_not_fit_the_features_is_rejected(
    tmp_path: Path, options: dict[str, object], complaint: str
) -> None:
    with pytest.raises(ModelLoadError, match=complaint):
        _load_booster(model_folder(tmp_path, **options), threads=1)  # type: ignore[arg-type]


def test_a_folder_without_mlmodel_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no MLmodel"):
        _load_booster(tmp_path, threads=1)


@pytest.mark.parametrize(
    ("tags", "complaint"),
    [
        ({}, "no 'threshold' tag"),
        ({"threshold": "high"}, "not a number"),
        ({"threshold": "1.5"}, "outside"),
    ],
)
def test_the_threshold_tag_must_be_a_probability(tags: dict[str, str], complaint: str) -> None:
    with pytest.raises(ModelLoadError, match=complaint):
        _threshold(tags, "7")


def test_threshold_tag_is_read() -> None:
    assert _threshold({"threshold": "0.5965"}, "2") == pytest.approx(0.5965)


def loaded(booster: xgb.Booster) -> LoadedModel:
    return LoadedModel("fraud-detector", "3", "production", 0.5, booster, {}, "run")


def test_validation_accepts_probabilities_and_predict_matches_the_booster(tmp_path: Path) -> None:
    booster, reference = _load_booster(model_folder(tmp_path), threads=1)
    model = loaded(booster)
    validate_model(model, reference)
    rows = np.asarray(reference, dtype=np.float32)
    expected = booster.predict(xgb.DMatrix(rows, feature_names=list(FEATURE_COLUMNS)))
    np.testing.assert_array_equal(model.predict(rows), expected)
    assert model.predict(np.empty((0, len(FEATURE_COLUMNS)), dtype=np.float32)).shape == (0,)


def test_validation_rejects_a_model_that_does_not_output_probabilities(tmp_path: Path) -> None:
    frame = synthetic_transactions(rows=300, seed=3)
    data = xgb.DMatrix(frame[list(FEATURE_COLUMNS)], label=frame["Amount"])
    regressor = xgb.train({"objective": "reg:squarederror"}, data, num_boost_round=5)
    rows = frame[list(FEATURE_COLUMNS)].to_numpy().tolist()[:5]
    with pytest.raises(ModelLoadError, match="outside"):
        validate_model(loaded(regressor), rows)


def test_unready_reason_is_a_code_that_names_neither_host_nor_exception(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A probe learns why the holder has no model as a code: whether the registry did not
    answer, or it answered without a servable model; the detail stays in `last_error`."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    holder = ModelHolder()
    assert holder.refresh().result == "failure"
    assert holder.unready_reason == "registry_unreachable"
    assert "127.0.0.1" in (holder.last_error or "")

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'empty.db'}")
    assert holder.refresh().result == "failure"  # the store answers: no such model
    assert holder.unready_reason == "no_model"
