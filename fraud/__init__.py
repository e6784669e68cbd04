"""Pure domain core of the fraud detector: schema, splitting, metrics and cost logic.

Nothing in this package talks to Kafka, MLflow, HTTP or Prometheus; adapters elsewhere do.
"""
