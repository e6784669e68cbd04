"""Pure decisions inside the stages: Kaggle credential discovery and the register quality gates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.fetch import KaggleCredentials, SourceError, kaggle_credentials
from pipelines.params import RegisterParams
from pipelines.register import failed_gates, version_tags


def test_kaggle_env_vars_win_over_kaggle_json(tmp_path: Path) -> None:
    (tmp_path / "kaggle.json").write_text(json.dumps({"username": "file", "key": "k1"}))
    env = {"KAGGLE_USERNAME": "env", "KAGGLE_KEY": "k2", "KAGGLE_CONFIG_DIR": str(tmp_path)}
    assert kaggle_credentials(env) == KaggleCredentials("env", "k2")


def test_kaggle_json_in_config_dir(tmp_path: Path) -> None:
    (tmp_path / "kaggle.json").write_text(json.dumps({"username": "file", "key": "k1"}))
    assert kaggle_credentials({"KAGGLE_CONFIG_DIR": str(tmp_path)}) == KaggleCredentials(
        "file", "k1"
    )


def test_no_kaggle_credentials(tmp_path: Path) -> None:
    assert kaggle_credentials({"KAGGLE_CONFIG_DIR": str(tmp_path)}) is None
    assert kaggle_credentials({"KAGGLE_USERNAME": "only-a-name", "KAGGLE_CONFIG_DIR": "/x"}) is None


def test_broken_kaggle_json_is_reported_not_ignored(tmp_path: Path) -> None:
    (tmp_path / "kaggle.json").write_text('{"username": "no key"}')
    with pytest.raises(SourceError, match=r"not a valid kaggle\.json"):
        kaggle_credentials({"KAGGLE_CONFIG_DIR": str(tmp_path)})


GATES = RegisterParams(min_auprc=0.8, min_roc_auc=0.95, min_recall_at_p90=0.7, promote=False)


def test_all_gates_pass_at_their_minimum() -> None:
    assert failed_gates({"auprc": 0.8, "roc_auc": 0.95, "recall_at_p90": 0.7}, GATES) == []


def test_each_missed_gate_is_named_with_its_setting() -> None:
    failures = failed_gates({"auprc": 0.5, "roc_auc": 0.99, "recall_at_p90": 0.1}, GATES)
    assert len(failures) == 2
    assert failures[0].startswith("auprc 0.5000 < 0.8000") and "register.min_auprc" in failures[0]
    assert "register.min_recall_at_p90" in failures[1]


def test_version_tags_keep_the_exact_threshold() -> None:
    metrics = {"threshold": 0.123456789, "auprc": 0.8, "roc_auc": 0.9, "recall_at_p90": 0.7}
    run = {"data_sha256": "ab" * 32, "git_commit": "c0ffee"}
    tags = version_tags(run, metrics, GATES)
    assert float(tags["threshold"]) == metrics["threshold"]
    assert float(tags["gate_min_recall_at_p90"]) == GATES.min_recall_at_p90
    assert tags["data_sha256"] == run["data_sha256"] and tags["git_commit"] == "c0ffee"
    assert all(isinstance(value, str) for value in tags.values())
