"""One holder of the model under an alias (default fraud-detector@production), shared by the
stream scorer and the REST API.

It resolves the alias to a version, downloads that version's artifacts, loads the native
booster (never a pickle), validates it, and only then makes it current. A background thread
polls the registry and repeats this when the alias moves; a failed load or validation keeps the
old model, logs why, and is counted. Readers take `holder.current` once per batch: swapping is
one reference assignment, so a batch is scored by exactly one model.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import xgboost as xgb
import yaml

from fraud.schema import FEATURE_COLUMNS
from infra.poller import Poller
from infra.settings import ModelSettings

log = logging.getLogger(__name__)


class ModelLoadError(RuntimeError):
    """A version could not be loaded or failed validation; the message says which and why."""


@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: str
    alias: str
    threshold: float
    booster: xgb.Booster
    tags: dict[str, str]
    run_id: str
    loaded_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @property
    def identity(self) -> tuple[str, str, str]:
        return (self.name, self.version, self.alias)

    def predict(self, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Fraud probabilities for rows in FEATURE_COLUMNS order, in one call on the booster."""
        if len(features) == 0:
            return np.empty(0, dtype=np.float32)
        scores: npt.NDArray[np.float32] = self.booster.inplace_predict(
            features, validate_features=False
        )
        return scores

    def margins(self, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """The raw scores (log-odds) that `predict` turns into probabilities."""
        margins: npt.NDArray[np.float32] = self.booster.inplace_predict(
            features, predict_type="margin", validate_features=False
        )
        return margins

    def contributions(self, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Per-feature TreeSHAP contributions in log-odds, the bias last: (rows, features + 1).

        Each row sums to its margin.
        """
        matrix = xgb.DMatrix(features, feature_names=list(FEATURE_COLUMNS), nthread=1)
        contributions: npt.NDArray[np.float32] = self.booster.predict(
            matrix, pred_contribs=True, validate_features=False
        )
        return contributions


@dataclass
class ReloadOutcome:
    result: str  # "success", "failure" or "unchanged"
    version: str | None
    reason: str = ""
    unreachable: bool = False  # the registry did not answer


def _threshold(tags: dict[str, str], version: str) -> float:
    try:
        threshold = float(tags["threshold"])
    except KeyError:
        raise ModelLoadError(f"version {version} has no 'threshold' tag") from None
    except ValueError:
        raise ModelLoadError(
            f"version {version} has a threshold tag that is not a number"
        ) from None
    if not 0.0 <= threshold <= 1.0:
        raise ModelLoadError(f"version {version} has threshold {threshold}, outside [0, 1]")
    return threshold


def _load_booster(model_dir: Path, threads: int) -> tuple[xgb.Booster, list[list[float]]]:
    """The native booster from an MLflow xgboost model folder, checked against our features."""
    mlmodel_path = model_dir / "MLmodel"
    if not mlmodel_path.is_file():
        raise ModelLoadError(f"the model's artifacts have no MLmodel file ({model_dir})")
    mlmodel: dict[str, Any] = yaml.safe_load(mlmodel_path.read_text())
    flavor = mlmodel.get("flavors", {}).get("xgboost")
    if not flavor:
        raise ModelLoadError("the model was not logged with the xgboost flavor")
    signature = mlmodel.get("signature")
    if not signature or not signature.get("inputs"):
        raise ModelLoadError("the model has no input signature")
    inputs = [spec.get("name") for spec in json.loads(signature["inputs"])]
    if inputs != list(FEATURE_COLUMNS):
        raise ModelLoadError(
            f"the model's signature inputs {inputs} differ from the expected features "
            f"{list(FEATURE_COLUMNS)}"
        )
    booster = xgb.Booster()
    booster.load_model(str(model_dir / flavor["data"]))
    if booster.feature_names is not None and list(booster.feature_names) != list(FEATURE_COLUMNS):
        raise ModelLoadError("the booster's feature names differ from the expected features")
    booster.set_param({"nthread": threads})
    example_path = model_dir / mlmodel.get("saved_input_example_info", {}).get(
        "artifact_path", "input_example.json"
    )
    rows: list[list[float]] = []
    if example_path.is_file():
        example = json.loads(example_path.read_text())
        columns = example.get("columns", [])
        if columns == list(FEATURE_COLUMNS):
            rows = example.get("data", [])
    return booster, rows


def validate_model(model: LoadedModel, reference_rows: list[list[float]]) -> None:
    """Scores on reference rows (the logged input example plus edge rows) are in [0, 1]."""
    edge = np.array(
        [np.zeros(len(FEATURE_COLUMNS)), np.full(len(FEATURE_COLUMNS), 1e6)], dtype=np.float32
    )
    rows = np.array(reference_rows, dtype=np.float32) if reference_rows else edge[:0]
    scores = model.predict(np.vstack([rows, edge]))
    if not (np.isfinite(scores).all() and (scores >= 0).all() and (scores <= 1).all()):
        raise ModelLoadError(
            f"version {model.version} gives scores outside [0, 1] or non-finite on reference rows"
        )


def load_version(
    client: Any, name: str, version: str, alias: str, tags: dict[str, str], threads: int = 1
) -> LoadedModel:
    """Download and check one registered version as serving would: its threshold tag, the
    xgboost flavor, the signature's features, and scores in [0, 1] on reference rows.
    ModelLoadError says what is wrong; `fraud promote` runs the same before moving an alias."""
    from mlflow.artifacts import download_artifacts

    threshold = _threshold(tags, version)
    uri = client.get_model_version_download_uri(name, version)
    with tempfile.TemporaryDirectory(prefix="fraud-model-") as tmp:
        model_dir = Path(download_artifacts(artifact_uri=uri, dst_path=tmp))
        booster, reference = _load_booster(model_dir, threads)
    run_id = client.get_model_version(name, version).run_id or ""
    model = LoadedModel(name, version, alias, threshold, booster, tags, run_id)
    validate_model(model, reference)
    return model


class ReloadRecorder(Protocol):
    """Where reload results go (serving.instruments.ModelMetrics)."""

    def record_reload(self, result: str, model: tuple[str, str, str] | None) -> None: ...


class ModelHolder:
    """The current model under `settings.model_alias`, reloaded when the alias moves."""

    def __init__(
        self, settings: ModelSettings | None = None, metrics: ReloadRecorder | None = None
    ) -> None:
        self.settings = settings or ModelSettings()
        self._current: LoadedModel | None = None
        self._metrics = metrics
        self._refresh_lock = threading.Lock()
        self._poller = Poller("model-holder", self.settings.model_poll_seconds, self.refresh)
        self.last_error: str | None = None
        self._registry_unreachable = False

    @property
    def current(self) -> LoadedModel | None:
        return self._current

    @property
    def ready(self) -> bool:
        return self._current is not None

    @property
    def unready_reason(self) -> str | None:
        """None with a model loaded; otherwise a code a probe may show (never a host or an
        exception text, which go to the log): "registry_unreachable" when the last try could
        not reach the registry, else "no_model"."""
        if self._current is not None:
            return None
        return "registry_unreachable" if self._registry_unreachable else "no_model"

    def refresh(self) -> ReloadOutcome:
        """Check where the alias points; load, validate and swap in a new version."""
        with self._refresh_lock:
            outcome = self._refresh()
        self._registry_unreachable = outcome.unreachable
        if outcome.result == "failure":
            self.last_error = outcome.reason
            log.warning("model reload failed, %s", outcome.reason)
        elif outcome.result == "success":
            self.last_error = None
            log.info(
                "now scoring with %s version %s (%s)",
                self.settings.model_name,
                outcome.version,
                self.settings.model_alias,
            )
        if self._metrics is not None:
            current = self._current
            self._metrics.record_reload(outcome.result, current.identity if current else None)
        return outcome

    def _refresh(self) -> ReloadOutcome:
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        from infra.tracking import configure_mlflow

        name, alias = self.settings.model_name, self.settings.model_alias
        keeping = f"; keeping version {self._current.version}" if self._current else "; not ready"
        try:
            configure_mlflow()
            client = MlflowClient()
            version = client.get_model_version_by_alias(name, alias)
        except MlflowException as exc:
            # MLflow's client wraps a server that does not answer (the requests error is the
            # context, not the cause); an answer such as "no such alias" has no such context.
            return ReloadOutcome(
                "failure",
                None,
                f"cannot resolve {name}@{alias}: {_first_line(exc)}{keeping}",
                isinstance(exc.__context__, OSError),
            )
        except Exception as exc:  # an unreachable server surfaces as requests/OS errors
            return ReloadOutcome(
                "failure", None, f"registry unreachable: {_first_line(exc)}{keeping}", True
            )
        number = str(version.version)
        if self._current is not None and self._current.version == number:
            return ReloadOutcome("unchanged", number)
        try:
            model = self._load(client, name, number, alias, dict(version.tags or {}))
        except ModelLoadError as exc:
            return ReloadOutcome("failure", number, f"version {number} rejected: {exc}{keeping}")
        except Exception as exc:
            return ReloadOutcome(
                "failure", number, f"version {number} failed to load: {_first_line(exc)}{keeping}"
            )
        self._current = model
        return ReloadOutcome("success", number)

    def _load(
        self, client: Any, name: str, version: str, alias: str, tags: dict[str, str]
    ) -> LoadedModel:
        return load_version(client, name, version, alias, tags, self.settings.model_threads)

    def start(self) -> None:
        """Load now if possible, then poll the registry in a daemon thread."""
        self.refresh()
        self._poller.start()

    def stop(self) -> None:
        self._poller.stop()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
