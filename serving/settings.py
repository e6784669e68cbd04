"""Settings of the serving processes, read from the environment with the ``FRAUD_`` prefix.

KafkaSettings is what every Kafka-facing process shares (``FRAUD_KAFKA_BOOTSTRAP=127.0.0.1:9092``),
so the scorer, replay, tail and the broker helper agree without passing flags around; ApiSettings
configures the REST API.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FRAUD_", extra="ignore", frozen=True)

    kafka_bootstrap: str = "127.0.0.1:9092"
    topic_transactions: str = "transactions"
    topic_predictions: str = "predictions"
    topic_dead_letters: str = "transactions.dlq"
    topic_partitions: int = Field(3, ge=1)

    @field_validator("kafka_bootstrap")
    @classmethod
    def _host_port(cls, value: str) -> str:
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port...], got {value!r}")
        return value

    @property
    def topics(self) -> tuple[str, str, str]:
        return (self.topic_transactions, self.topic_predictions, self.topic_dead_letters)


class ApiSettings(BaseSettings):
    """FRAUD_API_HOST, FRAUD_API_PORT, FRAUD_API_WORKERS, FRAUD_API_MAX_BATCH,
    FRAUD_API_MAX_BODY_BYTES, FRAUD_API_KEY, FRAUD_API_SCORING_THREADS."""

    model_config = SettingsConfigDict(env_prefix="FRAUD_", extra="ignore", frozen=True)

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

    @field_validator("api_key")
    @classmethod
    def _empty_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value() else None
