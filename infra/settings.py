"""Every setting of every process, with its default: one place to read them all.

Each class reads the environment with the `FRAUD_` prefix (`FRAUD_KAFKA_BOOTSTRAP` sets
`kafka_bootstrap`), ignores variables it does not know and is frozen. A bad value fails when the
class is built, and the CLI names the variable. Three standard variables keep their own names:
`MLFLOW_TRACKING_URI`, `PROMETHEUS_MULTIPROC_DIR`, and MLflow's client variables below.

The pipeline's own knobs (split fractions, boosting parameters, quality gates) are in
params.yaml, so that DVC reruns what depends on them; nothing is set in both places.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from infra.paths import project_root

DEFAULT_MODEL_NAME = "fraud-detector"
# The registry's aliases: the pipeline points `challenger` at a version that passes the quality
# gates; a person moves `production` (the MLflow UI or `fraud promote`); serving follows it.
# Lower case because the MLflow UI lower-cases every alias a person types (MLflow 3.17): a
# `Production` alias could be set with the API but never moved in the UI.
PRODUCTION_ALIAS = "production"
CHALLENGER_ALIAS = "challenger"

# MLflow client defaults for the serving processes, applied by the CLI when the environment does
# not set them: a registry that does not answer must not stall start-up or a reload for minutes
# of retries. MLflow reads these from the environment only.
MLFLOW_CLIENT_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}


class FraudSettings(BaseSettings):
    """The base of every settings class: `FRAUD_` variables, unknown ones ignored, frozen."""

    model_config = SettingsConfigDict(env_prefix="FRAUD_", extra="ignore", frozen=True)


def default_tracking_uri() -> str:
    """The embedded store, `mlflow.db` at the project root, wherever the command runs from."""
    return f"sqlite:///{project_root() / 'mlflow.db'}"


class TrackingSettings(FraudSettings):
    """MLflow's own variable, MLFLOW_TRACKING_URI; default: the embedded sqlite store."""

    tracking_uri: str = Field(
        default_factory=default_tracking_uri, validation_alias="MLFLOW_TRACKING_URI"
    )


class FetchSettings(FraudSettings):
    """FRAUD_DATA_SOURCE (a local creditcard.csv, overriding params.yaml's fetch.source),
    FRAUD_KAGGLE_API_URL, FRAUD_KAGGLE_TIMEOUT_SECONDS."""

    data_source: str = ""
    kaggle_api_url: str = "https://www.kaggle.com/api/v1"
    kaggle_timeout_seconds: float = 60.0


class ModelSettings(FraudSettings):
    """Which registered model serving follows, and how: FRAUD_MODEL_NAME, FRAUD_MODEL_ALIAS,
    FRAUD_MODEL_POLL_SECONDS, FRAUD_MODEL_THREADS. The pipeline registers under the same name."""

    model_name: str = Field(DEFAULT_MODEL_NAME, min_length=1)
    model_alias: str = Field(PRODUCTION_ALIAS, min_length=1)
    model_poll_seconds: float = Field(10.0, gt=0)
    # Threads per predict call. On a 2-core machine shared with the broker, two threads took
    # 7-12 ms for batches of 1-10 rows (waking the second thread) against 0.6 ms for one, and
    # gained nothing on 2,000 rows.
    model_threads: int = Field(1, ge=1)


class KafkaSettings(FraudSettings):
    """What every Kafka-facing process shares, so the scorer, replay, tail and the broker
    helper agree without flags: FRAUD_KAFKA_BOOTSTRAP, FRAUD_TOPIC_*."""

    kafka_bootstrap: str = "127.0.0.1:9092"
    topic_transactions: str = "transactions"
    topic_predictions: str = "predictions"
    topic_dead_letters: str = "transactions.dlq"
    # Late truth (chargebacks), the labels that fail their contract, and the challenger's
    # predictions when the scorer shadow-scores (DESIGN.md §3).
    topic_labels: str = "labels"
    topic_label_dead_letters: str = "labels.dlq"
    topic_shadow_predictions: str = "predictions.shadow"
    topic_partitions: int = Field(3, ge=1)
    # How long a client waits for the broker's first answer before the command says it cannot
    # use Kafka (the scorer and the monitor then retry; replay and tail exit 1).
    kafka_connect_seconds: float = Field(5.0, gt=0)

    @property
    def connect_timeout_ms(self) -> int:
        return int(self.kafka_connect_seconds * 1000)

    @field_validator("kafka_bootstrap")
    @classmethod
    def _host_port(cls, value: str) -> str:
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port...], got {value!r}")
        return value

    @property
    def topics(self) -> tuple[str, ...]:
        """Every topic the system uses; `fraud kafka start` creates the missing ones."""
        return (
            self.topic_transactions,
            self.topic_predictions,
            self.topic_dead_letters,
            self.topic_labels,
            self.topic_label_dead_letters,
            self.topic_shadow_predictions,
        )


class BrokerSettings(FraudSettings):
    """The local broker of `fraud kafka start`: FRAUD_KAFKA_DATA_DIR (relative to the project
    root), FRAUD_KAFKA_CONTROLLER_PORT, FRAUD_KAFKA_HEAP."""

    kafka_data_dir: Path = Path(".run/kafka")
    kafka_controller_port: int = Field(9093, ge=1, le=65535)
    kafka_heap: str = Field("512m", pattern=r"^[1-9][0-9]*[kKmMgG]?$")

    @property
    def data_dir(self) -> Path:
        return (project_root() / self.kafka_data_dir).resolve()

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "kafka.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    @property
    def properties_file(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"


class ScorerSettings(KafkaSettings):
    """FRAUD_SCORER_* settings of `fraud score`, plus the broker and topics of KafkaSettings."""

    scorer_group_id: str = "fraud-scorer"
    scorer_max_batch: int = Field(2000, ge=1)
    scorer_poll_timeout_ms: int = Field(100, ge=1)
    # How long a micro-batch may wait to grow once its first message is there (0: it takes
    # only what has arrived). Each batch has a fixed cost (the booster call, the sends' flush).
    scorer_batch_wait_ms: float = Field(0.0, ge=0)
    # How soon the group notices a scorer that died without leaving (kill -9, lost host) and
    # hands its partitions to the others. The broker accepts 6,000 at the least.
    scorer_session_timeout_ms: int = Field(10_000, ge=1)
    # How long to keep retrying a batch the broker will not acknowledge before exiting non-zero.
    scorer_send_retry_seconds: float = Field(120.0, gt=0)
    # The whole stop after SIGTERM/SIGINT: waiting for acknowledgements, the offset commit and
    # closing the clients share it. What is not acknowledged by then is not committed, and is
    # scored again after a restart. Under the 30 s orchestrators (compose, Kubernetes) give.
    scorer_shutdown_seconds: float = Field(25.0, gt=0)
    scorer_metrics_host: str = "127.0.0.1"
    scorer_metrics_port: int = Field(8001, ge=0, le=65535)  # 0: any free port
    scorer_exactly_once: bool = False
    # Shadow scoring: also score each batch with the `challenger` version, when it exists and
    # differs from the one scoring production, into topic_shadow_predictions. Production's
    # outputs, offsets and guarantees stay as they are; a challenger that fails never stops them.
    scorer_shadow: bool = False
    # Distinct per scorer process in exactly-once mode; a restarted process reuses its id, which
    # fences its predecessor and aborts the transaction it left open.
    scorer_instance: str = "0"


class MonitorSettings(KafkaSettings):
    """FRAUD_MONITOR_* settings of `fraud monitor`, plus the broker and topics of KafkaSettings;
    which model version's baseline it follows comes from ModelSettings (FRAUD_MODEL_*)."""

    monitor_group_id: str = Field("fraud-monitor", min_length=1)
    # Rows in the sliding windows (N) and new transactions between runs (M). Unset (the
    # default): the values the loaded baseline was calibrated for (10,000 and 2,500 from
    # params.yaml), the only ones its thresholds are valid for.
    monitor_window_size: int | None = Field(None, ge=1)
    monitor_run_every: int | None = Field(None, ge=1)
    # A run also happens after this long when at least one transaction arrived (T): a slow
    # stream still gets fresh figures. One run of 10,000 rows costs ~2 s of one core.
    monitor_run_seconds: float = Field(30.0, gt=0)
    # Predictions the alert-rate signal needs in the window; unset: the baseline's rule.
    monitor_min_alert_volume: int | None = Field(None, ge=1)
    monitor_metrics_host: str = "127.0.0.1"
    monitor_metrics_port: int = Field(8002, ge=0, le=65535)  # 0: any free port
    # Where the reports of windows that raised drift go (relative to the project root), and
    # how many of them are kept (0: none written).
    monitor_reports_dir: Path = Path("reports/drift")
    monitor_reports_keep: int = Field(20, ge=0)
    # Run under Linux's SCHED_IDLE policy: the monitor only gets the CPU time no other process
    # wants, so it never delays the scorer; when that is not enough it falls behind and skips
    # ahead, which fraud_monitor_sampled_ratio shows. (At nice 10 it doubled the scorer's p99.)
    monitor_cpu_idle: bool = True
    monitor_poll_timeout_ms: int = Field(200, ge=1)
    monitor_max_poll_records: int = Field(2000, ge=1)
    # Longer than the scorer's: at idle priority beside a busy scorer, the monitor's heartbeats
    # can be late without it being gone. The broker accepts 6,000 to 1,800,000.
    monitor_session_timeout_ms: int = Field(30_000, ge=6_000)
    # Live performance (labels joined with predictions): a transaction with no label after this
    # long counts as legitimate (chargebacks come within weeks; default one week), the figures'
    # sliding window in resolved transactions, and the most transactions held waiting for a
    # label (past that the oldest count as legitimate early, so memory stays bounded).
    monitor_label_delay_seconds: float = Field(7 * 24 * 3600.0, gt=0)
    monitor_live_window: int = Field(10_000, ge=1)
    monitor_live_max_pending: int = Field(200_000, ge=1)

    @field_validator(
        "monitor_window_size", "monitor_run_every", "monitor_min_alert_volume", mode="before"
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @property
    def reports_dir(self) -> Path:
        return (project_root() / self.monitor_reports_dir).resolve()


class ApiSettings(FraudSettings):
    """FRAUD_API_HOST, FRAUD_API_PORT, FRAUD_API_WORKERS, FRAUD_API_MAX_BATCH,
    FRAUD_API_MAX_BODY_BYTES, FRAUD_API_KEY, FRAUD_API_SCORING_THREADS, and
    PROMETHEUS_MULTIPROC_DIR (where several workers share their metrics)."""

    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=0, le=65535)  # 0: any free port
    # Processes serving the port (`fraud api --workers`). Each holds its own copy of the model
    # and the metrics are summed across them (prometheus_client multiprocess mode).
    api_workers: int = Field(1, ge=1)
    api_max_batch: int = Field(1000, ge=1)  # transactions per /v1/score/batch request
    # A 1,000-row batch with full-precision numbers is about 0.8 MB.
    api_max_body_bytes: int = Field(2 * 1024 * 1024, ge=1024)
    # When set, /v1 routes need it in the X-API-Key header. Empty means unset, so compose can
    # pass `${FRAUD_API_KEY:-}` through.
    api_key: SecretStr | None = None
    # Threads running booster calls off the event loop; more than the cores only adds switching.
    api_scoring_threads: int = Field(2, ge=1)
    # prometheus_client's own variable; `fraud api --workers N` sets it for its workers when unset.
    metrics_multiproc_dir: Path | None = Field(None, validation_alias="PROMETHEUS_MULTIPROC_DIR")

    @field_validator("api_key")
    @classmethod
    def _empty_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value() else None

    @field_validator("metrics_multiproc_dir", mode="before")
    @classmethod
    def _empty_dir_is_unset(cls, value: object) -> object:
        return value or None


class StackSettings(FraudSettings):
    """`fraud up|down|status`, the local stack under supervisord: FRAUD_MLFLOW_PORT,
    FRAUD_PROMETHEUS_PORT, FRAUD_PROMETHEUS_BINARY, FRAUD_STACK_DIR. The parts' own ports are
    their settings' (FRAUD_KAFKA_BOOTSTRAP, FRAUD_API_PORT, FRAUD_SCORER_METRICS_PORT,
    FRAUD_MONITOR_METRICS_PORT)."""

    mlflow_port: int = Field(5000, ge=1, le=65535)
    prometheus_port: int = Field(9090, ge=1, le=65535)
    # Debian's package `prometheus`; any Prometheus 2.x or 3.x binary works.
    prometheus_binary: str = Field("prometheus", min_length=1)
    # supervisord's socket and configuration, the parts' logs (logs/) and Prometheus's data,
    # relative to the project root.
    stack_dir: Path = Path(".run")

    @property
    def run_dir(self) -> Path:
        return (project_root() / self.stack_dir).resolve()


def default_auth_database_uri() -> str:
    """MLflow's user store, `mlflow-auth.db` beside the embedded `mlflow.db`."""
    return f"sqlite:///{project_root() / 'mlflow-auth.db'}"


# MLflow's basic-auth app refuses shorter passwords (MLflow 3.17).
MLFLOW_MIN_PASSWORD_LENGTH = 12


class RegistryAuthSettings(FraudSettings):
    """The MLflow server's logins (`fraud mlflow` with MLflow's basic-auth app): FRAUD_MLFLOW_AUTH,
    FRAUD_MLFLOW_EDITOR_USERNAME, FRAUD_MLFLOW_EDITOR_PASSWORD, FRAUD_MLFLOW_READER_USERNAME,
    FRAUD_MLFLOW_READER_PASSWORD, FRAUD_MLFLOW_AUTH_DATABASE_URI. The editor administers the
    server and may change anything (register versions, move aliases); the reader may only read.
    Clients log in with MLflow's own MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD."""

    # Off: no login at all, which `fraud mlflow` allows only on a loopback interface.
    mlflow_auth: bool = False
    mlflow_editor_username: str = Field("editor", min_length=1)
    mlflow_editor_password: SecretStr | None = Field(None, validate_default=True)
    mlflow_reader_username: str = Field("reader", min_length=1)
    mlflow_reader_password: SecretStr | None = Field(None, validate_default=True)
    # Where the server keeps its users and permissions (a SQLAlchemy URI).
    mlflow_auth_database_uri: str = Field(default_factory=default_auth_database_uri, min_length=1)

    @field_validator("mlflow_editor_password", "mlflow_reader_password", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return value or None  # compose passes `${VARIABLE:-}` through as ""

    @field_validator("mlflow_editor_password", "mlflow_reader_password")
    @classmethod
    def _required_with_auth(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is None:
            if info.data.get("mlflow_auth"):
                raise ValueError("required when FRAUD_MLFLOW_AUTH is on")
        elif len(value.get_secret_value()) < MLFLOW_MIN_PASSWORD_LENGTH:
            raise ValueError(
                f"MLflow needs at least {MLFLOW_MIN_PASSWORD_LENGTH} characters in a password"
            )
        return value

    @field_validator("mlflow_reader_username")
    @classmethod
    def _two_accounts(cls, value: str, info: ValidationInfo) -> str:
        if value == info.data.get("mlflow_editor_username"):
            raise ValueError("must differ from FRAUD_MLFLOW_EDITOR_USERNAME")
        return value
