"""Settings every Kafka-facing process shares: where the broker is and what the topics are called.

Read from the environment with the ``FRAUD_`` prefix (``FRAUD_KAFKA_BOOTSTRAP=127.0.0.1:9092``),
so the scorer, replay, tail and the broker helper agree without passing flags around.
"""

from __future__ import annotations

from pydantic import Field, field_validator
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
