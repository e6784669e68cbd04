"""Monitoring of the running system: the drift monitor (`fraud monitor`, monitor.py and the
modules it uses; the Evidently computation it shares with the pipeline is drift.py), the
Prometheus configuration and alert rules (prometheus/) and the Grafana dashboards (grafana/).

A service's own Prometheus instruments live with that service (the scorer's and the API's in
serving/instruments.py, the monitor's in instruments.py here).
"""
