"""params.yaml is typed: the shipped file loads, and a bad setting is named at start."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipelines.params import ParamsError, load_params

SHIPPED = Path(__file__).resolve().parents[2] / "params.yaml"


def write(tmp_path: Path, section: str, key: str, value: object) -> Path:
    params = yaml.safe_load(SHIPPED.read_text())
    params[section][key] = value
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_shipped_params_load() -> None:
    params = load_params(SHIPPED)
    # The model name has one source, FRAUD_MODEL_NAME (infra.settings), not params.yaml too.
    assert "model_name" not in yaml.safe_load(SHIPPED.read_text())["register"]
    assert params.prepare.train_fraction + params.prepare.valid_fraction < 1


@pytest.mark.parametrize(
    ("section", "key", "value", "named"),
    [
        ("train", "max_dept", 6, "train.max_dept"),
        ("train", "learning_rate", 0, "train.learning_rate"),
        ("prepare", "valid_fraction", 0.5, "prepare.train_fraction + prepare.valid_fraction"),
        ("fetch", "sha256", "not-a-checksum", "fetch.sha256"),
        ("register", "promote", "sometimes", "register.promote"),
    ],
)
def test_bad_setting_is_named(
    tmp_path: Path, section: str, key: str, value: object, named: str
) -> None:
    with pytest.raises(ParamsError) as error:
        load_params(write(tmp_path, section, key, value))
    assert named in str(error.value)


def test_missing_file_says_where_to_run(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match="run the stages from the repository root"):
        load_params(tmp_path / "params.yaml")
