"""Monitoring of the running system: the Prometheus configuration and alert rules
(prometheus/), and the home of the drift and performance monitor, which is not built yet.

A service's own Prometheus instruments live with that service (the scorer's and the API's in
serving/instruments.py).
"""
