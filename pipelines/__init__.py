"""DVC stages: fetch, prepare, train, evaluate, register. Run each with `python -m pipelines.<stage>`."""
