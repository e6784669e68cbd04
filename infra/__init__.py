"""Shared infrastructure of the services and the pipeline: every setting, the project's paths,
the MLflow tracking configuration and the model registry.

It sits between the runnable parts (`cli`, `serving`, `monitoring`, `pipelines`) and the pure
core (`fraud`): they may import it, it imports only `fraud` and third-party libraries.
"""
