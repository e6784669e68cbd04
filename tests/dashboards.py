"""The Grafana dashboards of monitoring/grafana as the tests read them: the files, their panels
(a row's nested panels included), every target's PromQL, Grafana's variables in it, the
metric names an expression selects, and the series the exporters expose. Shared by the JSON checks
(tests/unit) and the tests that check the alert rules and run every query on a real Prometheus
(tests/integration)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

ROOT = Path(__file__).resolve().parents[1]
GRAFANA_DIR = ROOT / "monitoring" / "grafana"
DASHBOARDS_DIR = GRAFANA_DIR / "dashboards"
PROVISIONING_DIR = GRAFANA_DIR / "provisioning"

Json = dict[str, Any]


@dataclass(frozen=True)
class Query:
    """One target of one panel."""

    dashboard: str
    panel: str
    ref_id: str
    expr: str
    legend: str

    @property
    def where(self) -> str:
        return f"{self.dashboard} / {self.panel} / {self.ref_id}"


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARDS_DIR.glob("*.json"))


def load(path: Path) -> Json:
    dashboard: Json = json.loads(path.read_text())
    return dashboard


def panels(dashboard: Mapping[str, Any]) -> Iterator[Json]:
    """Every panel, rows included, and the panels a collapsed row keeps inside it."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def queries(dashboard: Mapping[str, Any]) -> list[Query]:
    return [
        Query(
            dashboard["title"],
            panel["title"],
            target["refId"],
            target["expr"],
            target.get("legendFormat", ""),
        )
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
    ]


def all_queries() -> list[Query]:
    return [query for path in dashboard_files() for query in queries(load(path))]


# Grafana's global variables the dashboards may use, with the value a query runs with outside
# Grafana. Grafana makes $__rate_interval max($__interval + scrape interval, 4 scrape intervals),
# 20 s at least with the 5 s scrape; a minute (twelve scrapes) is one Grafana also uses on a
# wider time range, and it still holds traffic sent seconds before the query.
GRAFANA_VARIABLES = {"__rate_interval": "1m", "__interval": "15s"}
_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def variables(expr: str) -> set[str]:
    return {braced or plain for braced, plain in _VARIABLE.findall(expr)}


def substitute(expr: str, values: Mapping[str, str] = GRAFANA_VARIABLES) -> str:
    """The expression as Grafana sends it, each `$var` / `${var}` replaced by its value."""
    unknown = variables(expr) - values.keys()
    if unknown:
        raise ValueError(f"unknown Grafana variables {sorted(unknown)} in {expr!r}")
    return _VARIABLE.sub(lambda m: values[m.group(1) or m.group(2)], expr)


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.$:])[a-zA-Z_:][a-zA-Z0-9_:]*")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers that are neither functions,
    aggregations (followed by a parenthesis), keywords, label names nor inside strings,
    label matchers or range brackets."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = _LABEL_LIST.sub(" ", text)  # label lists of aggregations and vector matching
    names = set()
    for match in _IDENTIFIER.finditer(text):
        word = match.group()
        if text[match.end() :].lstrip().startswith("(") or word.lower() in _KEYWORDS:
            continue
        names.add(word)
    return names


def legend_labels(legend: str) -> set[str]:
    """The labels a legend format shows (`{{job}} p99` → {"job"})."""
    return set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend))


# --- the series the exporters expose -----------------------------------------------------------

# The series each type of prometheus_client instrument exposes, after its family's name.
SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
    "info": ("_info",),
}


def series_names(registry: CollectorRegistry) -> set[str]:
    """The series names the instruments of a registry expose."""
    names: set[str] = set()
    for family in registry.collect():
        names |= {family.name + suffix for suffix in SUFFIXES[family.type]}
    return names


def monitor_series() -> set[str]:
    """The drift monitor's series, from its instruments: the drift ones, and the live
    performance ones (monitoring/live.py) that `fraud monitor` puts on the same registry."""
    from monitoring.instruments import MonitorMetrics
    from monitoring.live import LiveMetrics

    metrics = MonitorMetrics()
    LiveMetrics(metrics.registry)
    return series_names(metrics.registry)
