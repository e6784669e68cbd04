"""Drift monitoring: compares scored traffic with data/reference/reference.parquet (written by
the prepare stage) and exposes the result to Prometheus. Only the baseline exists so far.
"""
