"""monitoring/grafana: the provisioning files and the dashboards' JSON, checked without Grafana
(it cannot run here): unique uids and panel ids, every panel inside the 24-column grid with no
two overlapping, every datasource the provisioned one, every metric a query names one the
services (the scorer, the API, the drift monitor) export. tests/integration/test_prometheus_live.py
runs every query on real data."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from serving.instruments import ApiMetrics, ScorerMetrics
from tests.dashboards import (
    DASHBOARDS_DIR,
    GRAFANA_DIR,
    PROVISIONING_DIR,
    dashboard_files,
    legend_labels,
    load,
    metric_names,
    monitor_series,
    panels,
    queries,
    series_names,
    substitute,
    variables,
)

GRID_COLUMNS = 24
DASHBOARDS = dashboard_files()
PROMETHEUS_CONFIG = GRAFANA_DIR.parent / "prometheus" / "prometheus.yml"
# Where Grafana's container finds this repository's folders (the compose service mounts them
# here, Grafana's documented locations): the provisioning files name container paths.
CONTAINER_MOUNTS = {
    PurePosixPath("/etc/grafana/provisioning"): PROVISIONING_DIR,
    PurePosixPath("/var/lib/grafana/dashboards"): DASHBOARDS_DIR,
}
# The panel types the dashboards use. Fraud drift adds a state timeline (the alarm and its signals
# run after run) and a bar gauge (each feature's latest drift over its threshold); its link to the
# monitor's report is a dashboard link, not a text panel, which would have no query.
PANEL_TYPES = {"row", "stat", "timeseries", "state-timeline", "bargauge"}


def exported_names() -> set[str]:
    """The series names the scorer, the API and the drift monitor expose, from their instruments
    themselves."""
    names = monitor_series()
    for metrics in (ScorerMetrics(), ApiMetrics()):
        names |= series_names(metrics.registry)
    return names


def datasource() -> dict[str, Any]:
    (path,) = (PROVISIONING_DIR / "datasources").glob("*.yml")
    config = yaml.safe_load(path.read_text())
    assert config["apiVersion"] == 1
    (source,) = config["datasources"]
    return dict(source)


def dashboard_ids() -> list[str]:
    return [path.stem for path in DASHBOARDS]


def all_datasource_refs(node: Any) -> Iterator[Any]:
    """Every `datasource` value anywhere in a dashboard (panels, targets, annotations...)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource":
                yield value
            yield from all_datasource_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from all_datasource_refs(item)


# --- provisioning ------------------------------------------------------------------------------


def test_the_datasource_is_prometheus_with_a_fixed_uid() -> None:
    source = datasource()
    assert source["type"] == "prometheus"
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", source["uid"])
    assert source["access"] == "proxy"
    assert source["url"] == "http://prometheus:9090"  # the compose service, Prometheus's port


def test_the_datasource_knows_prometheus_scrape_interval() -> None:
    """Grafana's $__rate_interval is built from it: it must be the interval Prometheus uses."""
    scrape = yaml.safe_load(PROMETHEUS_CONFIG.read_text())["global"]["scrape_interval"]
    assert datasource()["jsonData"]["timeInterval"] == scrape


def test_the_dashboard_provider_reads_the_folder_holding_the_dashboards() -> None:
    (path,) = (PROVISIONING_DIR / "dashboards").glob("*.yml")
    config = yaml.safe_load(path.read_text())
    assert config["apiVersion"] == 1
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    folder = PurePosixPath(provider["options"]["path"])
    assert CONTAINER_MOUNTS.get(folder) == DASHBOARDS_DIR, f"{folder} is not where they are"
    assert not provider["options"].get("foldersFromFilesStructure", False)
    assert DASHBOARDS, f"no dashboards in {DASHBOARDS_DIR}"


# --- dashboards --------------------------------------------------------------------------------


def test_the_fraud_scoring_and_drift_dashboards_exist() -> None:
    assert {"Fraud scoring", "Fraud drift"} <= {load(path)["title"] for path in DASHBOARDS}


def test_dashboard_uids_and_titles_are_unique() -> None:
    dashboards = [load(path) for path in DASHBOARDS]
    uids = [d["uid"] for d in dashboards]
    titles = [d["title"] for d in dashboards]
    assert len(set(uids)) == len(uids), uids
    assert len(set(titles)) == len(titles), titles
    for uid in uids:
        assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", uid), f"{uid!r} is not a Grafana uid"


@pytest.mark.parametrize("path", DASHBOARDS, ids=dashboard_ids())
def test_a_current_grafana_schema(path: Path) -> None:
    dashboard = load(path)
    assert dashboard["schemaVersion"] >= 39  # Grafana 11 and later
    assert dashboard.get("id") is None  # provisioning assigns it
    for panel in panels(dashboard):
        assert panel["type"] in PANEL_TYPES, panel["title"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=dashboard_ids())
def test_panel_ids_are_unique(path: Path) -> None:
    ids = Counter(panel["id"] for panel in panels(load(path)))
    assert all(isinstance(i, int) for i in ids)
    assert [i for i, times in ids.items() if times > 1] == []


@pytest.mark.parametrize("path", DASHBOARDS, ids=dashboard_ids())
def test_every_panel_is_inside_the_grid(path: Path) -> None:
    for panel in panels(load(path)):
        x, y, w, h = (panel["gridPos"][k] for k in "xywh")
        assert all(isinstance(v, int) for v in (x, y, w, h)), panel["title"]
        assert x >= 0 and y >= 0 and w >= 1 and h >= 1, panel["title"]
        assert x + w <= GRID_COLUMNS, f"{panel['title']} ends at column {x + w}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=dashboard_ids())
def test_no_two_panels_overlap(path: Path) -> None:
    placed = [(p["title"], p["gridPos"]) for p in panels(load(path))]
    for (first, a), (second, b) in itertools.combinations(placed, 2):
        apart = (
            a["x"] + a["w"] <= b["x"]
            or b["x"] + b["w"] <= a["x"]
            or a["y"] + a["h"] <= b["y"]
            or b["y"] + b["h"] <= a["y"]
        )
        assert apart, f"{first!r} {a} overlaps {second!r} {b}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=dashboard_ids())
def test_every_datasource_is_the_provisioned_one(path: Path) -> None:
    dashboard = load(path)
    wanted = {"type": "prometheus", "uid": datasource()["uid"]}
    refs = list(all_datasource_refs(dashboard))
    assert refs, "no datasource named anywhere"
    assert [ref for ref in refs if ref != wanted] == []
    for panel in panels(dashboard):
        if panel["type"] == "row":
            assert "targets" not in panel, panel["title"]
            continue
        assert panel.get("datasource") == wanted, panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(set(ref_ids)) == len(ref_ids), panel["title"]
        for target in panel["targets"]:
            assert target.get("datasource") == wanted, (panel["title"], target["refId"])
            assert target["expr"].strip(), (panel["title"], target["refId"])


@pytest.mark.parametrize("path", DASHBOARDS, ids=dashboard_ids())
def test_every_metric_a_query_names_is_exported(path: Path) -> None:
    exported = exported_names()
    for query in queries(load(path)):
        named = metric_names(query.expr)
        assert named, f"{query.where}: no metric in {query.expr!r}"
        assert named <= exported, f"{query.where}: {sorted(named - exported)} are not exported"


@pytest.mark.parametrize("path", DASHBOARDS, ids=dashboard_ids())
def test_rate_windows_are_grafanas_rate_interval(path: Path) -> None:
    """Grafana's advice: `$__rate_interval` adapts to the scrape interval and the time range,
    where a fixed window shows nothing or too little when either changes."""
    for query in queries(load(path)):
        assert variables(query.expr) <= {"__rate_interval"}, query.where
        for window in re.findall(r"\[([^\]]*)\]", query.expr):
            assert window == "$__rate_interval", f"{query.where}: [{window}]"
        substitute(query.expr)  # every variable is one Grafana defines


def row_panels(dashboard: dict[str, Any], title: str) -> list[dict[str, Any]]:
    """The panels under an expanded row: below it, above the next row."""
    rows = sorted(
        (p["gridPos"]["y"], p["title"]) for p in dashboard["panels"] if p["type"] == "row"
    )
    top = next(y for y, name in rows if name == title)
    bottom = min((y for y, _ in rows if y > top), default=float("inf"))
    return [
        p for p in dashboard["panels"] if p["type"] != "row" and top < p["gridPos"]["y"] < bottom
    ]


def test_the_live_performance_row_compares_production_and_challenger() -> None:
    """Every live figure of the monitor (issue 12's contract) is on the drift dashboard, per
    alias and version where the monitor has them, the recall beside its gate."""
    (path,) = (p for p in DASHBOARDS if load(p)["title"] == "Fraud drift")
    live = row_panels(load(path), "Live performance")
    named = {name for panel in live for t in panel["targets"] for name in metric_names(t["expr"])}
    assert named == {
        "fraud_live_recall", "fraud_live_recall_gate", "fraud_live_precision", "fraud_live_auprc",
        "fraud_live_alerts_per_1000", "fraud_live_label_coverage", "fraud_live_frauds",
        "fraud_label_delay_seconds_bucket", "fraud_live_pending", "fraud_labels_total",
    }  # fmt: skip
    (recall,) = (p for p in live if p["title"] == "Recall")
    assert {m for t in recall["targets"] for m in metric_names(t["expr"])} == {
        "fraud_live_recall",
        "fraud_live_recall_gate",
    }
    per_model = {n for n in named if n.startswith("fraud_live_")} - {"fraud_live_pending"}
    for panel in live:
        for target in panel["targets"]:
            if not metric_names(target["expr"]) & per_model:
                continue
            assert "by (alias, version)" in target["expr"], panel["title"]
            assert {"alias", "version"} <= legend_labels(target["legendFormat"]), panel["title"]
            if "fraud_live_recall_gate" not in target["expr"]:  # the gate has no window
                assert 'window="sliding"' in target["expr"], panel["title"]


# --- the checks themselves ---------------------------------------------------------------------


def test_exported_names_follow_the_instrument_types() -> None:
    names = exported_names()
    assert {"fraud_transactions_consumed_total", "fraud_consumer_lag", "fraud_api_ready"} <= names
    assert {"fraud_end_to_end_latency_seconds_bucket", "fraud_batch_size_count"} <= names
    assert "fraud_transactions_consumed" not in names  # a counter's series end in _total
    assert "fraud_end_to_end_latency_seconds" not in names  # a histogram has no bare series


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("min(fraud_scorer_ready)", {"fraud_scorer_ready"}),
        (
            'sum by (job, decision) (rate(fraud_predictions_total{decision="fraud"}[5m]))',
            {"fraud_predictions_total"},
        ),
        (
            "histogram_quantile(0.99, sum by (le) (rate(latency_bucket[$__rate_interval])))",
            {"latency_bucket"},
        ),
        ("(sum(rate(a_total[1m])) or vector(0)) / sum(rate(b_total[1m]))", {"a_total", "b_total"}),
        ("count by (version) (fraud_model_info == 1) * 1e3", {"fraud_model_info"}),
        ("sum(x) by (le) / on (job) group_left (instance) y offset 5m", {"x", "y"}),
        ('up{job="fraud_api"} unless bool absent(z)', {"up", "z"}),
    ],
)
def test_metric_names_of_an_expression(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_substitute_replaces_grafana_variables_and_refuses_unknown_ones() -> None:
    assert substitute("rate(x[$__rate_interval])") == "rate(x[1m])"
    assert substitute("rate(x[${__interval}])") == "rate(x[15s])"
    with pytest.raises(ValueError, match="instance"):
        substitute('x{instance="$instance"}')
