"""DVC stages: fetch, prepare, train, evaluate, register.

Run each with `python -m pipelines.<stage>` from the repository root, or all with `dvc repro`.
"""
