"""Every dashboard query and every alert rule on a real Prometheus scraping the real services.

Debian's `prometheus` runs the repository's configuration (prometheus.yml and rules/ as they are;
only targets/*.json point at this test's ports) while a `fraud score` on the session's broker
(shadow-scoring the challenger), a `fraud monitor` on the same topics and a `fraud api` on the
session's registry take traffic: a replay with malformed messages and late labels, API requests
with some refused, and a move of the production alias halfway (the challenger then moves to the
version production left, so both aliases have live figures throughout). Then each PromQL
expression of each Grafana panel runs through Prometheus's HTTP API and must return data, and
every alert rule must evaluate without error and stay quiet.
Last, a replay with a field stuck at 0 must turn fraud_drift_detected to 1 and fire
FraudDataDrift in Prometheus.
"""

from __future__ import annotations

import concurrent.futures
import json
import math
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from fraud.schema import TRANSACTION_COLUMNS
from tests import harness
from tests.dashboards import Query, all_queries, legend_labels, metric_names, substitute
from tests.harness import KafkaBroker
from tests.integration.registry_server import MODEL, RegistryServer
from tests.synthetic import synthetic_transactions

pytestmark = pytest.mark.timeout(600)  # the session's broker and registry may be built first

PROMETHEUS_DIR = harness.ROOT / "monitoring" / "prometheus"
REPLAYED = 4_000
REPLAY_RATE = 250  # transactions per second: 16 s of traffic


class Prometheus(harness.Service):
    """Debian's `prometheus` on a free port with a copy of monitoring/prometheus whose targets
    are the given ports, its storage in the copy."""

    def __init__(self, folder: Path, targets: dict[str, int]) -> None:
        binary = shutil.which("prometheus") or "/usr/bin/prometheus"
        assert Path(binary).exists(), "`make system-deps` installs Debian's prometheus package"
        config = folder / "prometheus"
        shutil.copytree(PROMETHEUS_DIR, config)
        for service, port in targets.items():
            path = config / "targets" / f"{service}.json"
            (group,) = json.loads(path.read_text())
            group["targets"] = [f"127.0.0.1:{port}"]
            path.write_text(json.dumps([group]))
        port = harness.free_port()
        command = [
            binary,
            f"--config.file={config / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ]
        super().__init__(command, {}, folder / "prometheus.log", port, folder, "/-/ready")

    def api(self, path: str, **params: str | float) -> Any:
        """The `data` of a successful answer of the HTTP API at /api/v1/`path`."""
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=30)
        body = response.json()
        assert response.status_code == 200 and body["status"] == "success", (path, params, body)
        return body["data"]

    def value(self, expr: str) -> float | None:
        """The value of a query returning one series; None while it returns none."""
        result = self.api("query", query=expr)["result"]
        return float(result[0]["value"][1]) if result else None


@dataclass
class Stack:
    topics: dict[str, str]
    scorer: harness.Scorer
    api: harness.ApiServer
    monitor: harness.Monitor
    prometheus: Prometheus


@pytest.fixture
def stack(kafka_broker: KafkaBroker, registry: RegistryServer, tmp_path: Path) -> Iterator[Stack]:
    """The scorer, the monitor, the API and Prometheus scraping them; all stopped at the end,
    even on failure. Production is version 1 and the challenger version 2; the registry's
    aliases are put back at the end (the session registry is shared)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=registry.uri)
    challenger_before = client.get_registered_model(MODEL).aliases.get("challenger")
    registry.promote("1")
    registry.promote("2", "challenger")
    topics = harness.new_topics(kafka_broker.bootstrap, "prometheus")
    group = f"scorer-{topics['FRAUD_TOPIC_TRANSACTIONS']}"
    model = {**registry.env, "FRAUD_MODEL_POLL_SECONDS": "1"}
    scorer_env = {**model, **topics, "FRAUD_SCORER_GROUP_ID": group, "FRAUD_SCORER_SHADOW": "true"}
    scorer = harness.Scorer(scorer_env, tmp_path / "scorer.log", cwd=tmp_path)
    api = harness.ApiServer(model, tmp_path / "api.log", cwd=tmp_path)
    monitor_env = {
        **model, **topics, "FRAUD_MONITOR_GROUP_ID": f"monitor-{group}",
        "FRAUD_MONITOR_RUN_SECONDS": "1", "FRAUD_MONITOR_REPORTS_DIR": str(tmp_path / "drift"),
    }  # fmt: skip
    monitor = harness.Monitor(monitor_env, tmp_path / "monitor.log", cwd=tmp_path)
    ports = {"scorer": scorer.port, "api": api.port, "monitor": monitor.port}
    prometheus = Prometheus(tmp_path, ports)
    services: list[harness.Service] = [prometheus, scorer, api, monitor]
    try:
        for service in services:
            service.start()
        for service in services:
            service.wait_ready(timeout=120)
        # Labels sent before the monitor's label reader has its position would go unseen.
        harness.wait_until(
            lambda: "live performance: joining" in monitor.log(), 60, "the live reader"
        )
        yield Stack(topics, scorer, api, monitor, prometheus)
    finally:
        for service in services:
            service.terminate(timeout=20)
        registry.promote("1")
        if challenger_before is None:
            client.delete_registered_model_alias(MODEL, "challenger")
        else:
            registry.promote(str(challenger_before), "challenger")


def transactions(count: int) -> list[dict[str, Any]]:
    frame = synthetic_transactions(rows=count, fraud_rate=0.1, seed=21)
    return [
        {"transaction_id": f"tx-prom-{i}", **{c: float(row[c]) for c in TRANSACTION_COLUMNS}}
        for i, row in enumerate(frame.to_dict("records"))
    ]


def api_round(http: httpx.Client, rows: list[dict[str, Any]], n: int, sent: Counter[int]) -> None:
    """One round of API traffic: a score each time, now and then a batch, a model lookup, a
    body missing a field (422) and an unknown path (404)."""
    requests: list[tuple[str, str, Any, int]] = [("POST", "/v1/score", rows[n % len(rows)], 200)]
    if n % 5 == 0:
        requests.append(("POST", "/v1/score/batch", {"transactions": rows[:25]}, 200))
    if n % 7 == 0:
        missing = {k: v for k, v in rows[0].items() if k != "V14"}
        requests.append(("POST", "/v1/score", missing, 422))
    if n % 11 == 0:
        requests.append(("GET", "/v1/no-such-route", None, 404))
    if n % 13 == 0:
        requests.append(("GET", "/v1/model", None, 200))
    for method, path, body, status in requests:
        response = http.request(method, path, json=body)
        assert response.status_code == status, (method, path, response.text[:300])
        sent[status] += 1


def served_versions(service: harness.Service) -> set[str]:
    return {
        s.labels["version"]
        for s in service.samples()
        if s.name == "fraud_model_info" and s.value == 1
    }


def send_traffic(stack: Stack, registry: RegistryServer, workdir: Path) -> Counter[int]:
    """Replay transactions (2% malformed), each valid one's label a second later, while calling
    the API; production moves to version 2 a third of the way through, and the challenger to
    version 1. The API requests sent, by status."""
    source = workdir / "replay.parquet"
    synthetic_transactions(rows=2_000, fraud_rate=0.03, seed=22).to_parquet(source)
    command = [harness.FRAUD, "replay", str(source), "--limit", str(REPLAYED)]
    command += ["--rate", str(REPLAY_RATE), "--bad-fraction", "0.02", "--seed", "4"]
    command += ["--labels-after", "1"]
    env = {**registry.env, **stack.topics}
    rows = transactions(200)
    sent: Counter[int] = Counter()
    with (
        concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool,
        httpx.Client(base_url=stack.api.url, timeout=30) as http,
    ):
        replay = pool.submit(harness.run_bounded, command, workdir / "replay.log", 120, env)
        began, promoted, n = time.monotonic(), False, 0
        while not replay.done():
            api_round(http, rows, n, sent)
            n += 1
            if not promoted and time.monotonic() - began > REPLAYED / REPLAY_RATE / 3:
                registry.promote("2")
                registry.promote("1", "challenger")
                promoted = True
            time.sleep(0.05)
        assert replay.result() == 0, (workdir / "replay.log").read_text()[-2000:]
    assert promoted, "the replay ended before the alias moved"
    harness.wait_until(
        lambda: served_versions(stack.scorer) == served_versions(stack.api) == {"2"},
        60,
        "the scorer and the API to serve version 2",
        poll=0.5,
    )
    return sent


def check_query(prometheus: Prometheus, query: Query, at: float) -> list[dict[str, Any]]:
    """Run one panel target as Grafana would at `at`; it must return a series with a value."""
    data = prometheus.api("query", query=substitute(query.expr), time=at)
    assert data["resultType"] == "vector", query.where
    result: list[dict[str, Any]] = data["result"]
    assert result, f"{query.where}: no data for {query.expr}"
    values = [float(series["value"][1]) for series in result]
    assert any(math.isfinite(v) for v in values), f"{query.where}: only {values}"
    for series in result:  # what the legend shows is there
        missing = legend_labels(query.legend) - series["metric"].keys()
        assert not missing, f"{query.where}: legend labels {missing} not in {series['metric']}"
    return result


def test_every_dashboard_query_and_alert_rule_works_on_real_data(
    stack: Stack, registry: RegistryServer, tmp_path: Path
) -> None:
    prometheus = stack.prometheus

    def targets_up() -> bool:
        active = prometheus.api("targets", state="active")["activeTargets"]
        return sorted((t["labels"]["job"], t["health"]) for t in active) == [
            ("fraud-api", "up"),
            ("fraud-monitor", "up"),
            ("fraud-scorer", "up"),
        ]

    harness.wait_until(targets_up, 30, "Prometheus to scrape the services", poll=0.5)
    began = time.time()

    sent = send_traffic(stack, registry, tmp_path)

    # Prometheus has scraped everything once it holds the final counts.
    requests = 'fraud_http_requests_total{job="fraud-api", route=~"/v1/.*|unmatched"'
    wanted = {
        'sum(fraud_transactions_consumed_total{job="fraud-scorer"})': REPLAYED,
        f"sum({requests}}})": sum(sent.values()),
        f'sum({requests}, status="422"}})': sent[422],
        f'sum({requests}, status="404"}})': sent[404],
        'count(fraud_model_info{version="2"} == 1)': 2,
        'fraud_monitor_baseline_info{model_version="2"}': 1,
        # The monitor read everything the scorer did, and judged the last window of it.
        'sum(fraud_monitor_transactions_total{outcome!="invalid"})': REPLAYED
        - invalid_replayed(stack),
        "fraud_monitor_window_transactions": 200,
        "fraud_drift_detected": 0,  # normal traffic
        # Every valid transaction resolved by its label, under production's two versions; the
        # challenger (shadow-scored) has figures too.
        'sum(fraud_live_transactions{alias="production", window="since_start"})': REPLAYED
        - invalid_replayed(stack),
        'count(count by (alias) (fraud_live_transactions{window="since_start"} > 0))': 2,
    }
    observed: dict[str, float | None] = {}

    def final_counts() -> bool:
        observed.update({e: prometheus.value(e) for e in wanted})
        return observed == wanted

    try:
        harness.wait_until(final_counts, 60, "Prometheus to scrape the final counts", poll=1.0)
    except harness.HarnessError:
        wrong = {e: (observed[e], n) for e, n in wanted.items() if observed[e] != n}
        pytest.fail(
            f"Prometheus holds (observed, wanted) {wrong}; monitor log:\n"
            f"{stack.monitor.log_tail(30)}"
        )
    now = time.time()

    queries = all_queries()
    assert queries
    for query in queries:
        result = check_query(prometheus, query, now)
        live = any(name.startswith("fraud_live_") for name in metric_names(query.expr))
        if live and "alias" in legend_labels(query.legend):  # production against challenger
            aliases = {series["metric"]["alias"] for series in result}
            assert aliases >= {"production", "challenger"}, f"{query.where}: only {aliases}"

    # Over time, the panels that show the model's version show both, the promotion in between.
    for query in (q for q in queries if "fraud_model_info" in metric_names(q.expr)):
        data = prometheus.api(
            "query_range", query=substitute(query.expr), start=began, end=now, step=5
        )
        jobs_versions = {(s["metric"]["job"], s["metric"]["version"]) for s in data["result"]}
        assert jobs_versions >= {(j, v) for j in ("fraud-scorer", "fraud-api") for v in ("1", "2")}

    # Every alert rule of the repository is loaded, evaluated, without error; none fires.
    defined = {
        rule["alert"]
        for path in (PROMETHEUS_DIR / "rules").glob("*.yml")
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    rules = [
        rule for group in prometheus.api("rules", type="alert")["groups"] for rule in group["rules"]
    ]
    assert {rule["name"] for rule in rules} == defined
    for rule in rules:
        assert rule["health"] == "ok", (rule["name"], rule["health"], rule.get("lastError"))
        assert rule["state"] != "firing", (rule["name"], rule["alerts"])

    # A broken upstream field: the drift gauge turns to 1 and the page fires.
    replay_stuck_field(stack, registry, tmp_path)
    harness.wait_until(
        lambda: prometheus.value("fraud_drift_detected") == 1, 60, "fraud_drift_detected 1"
    )
    harness.wait_until(
        lambda: "FraudDataDrift" in firing(prometheus), 150, "FraudDataDrift to fire", poll=2.0
    )
    summary = stack.monitor.drift()
    assert summary is not None and summary["signals"]["data_quality"], summary
    assert "V14" in summary["quality_features"]
    assert list((tmp_path / "drift").glob("drift-*.html")), "a drifted window's report is kept"


def invalid_replayed(stack: Stack) -> float:
    """The malformed transactions the scorer sent to the dead-letter topic."""
    return harness.sample_total(stack.scorer.samples(), "fraud_dead_letters_total")


def replay_stuck_field(stack: Stack, registry: RegistryServer, workdir: Path) -> None:
    """A window and a half of transactions whose V14 is always 0."""
    source = workdir / "stuck.parquet"
    synthetic_transactions(rows=300, fraud_rate=0.03, seed=23).assign(V14=0.0).to_parquet(source)
    command = [harness.FRAUD, "replay", str(source), "--rate", "300"]
    env = {**registry.env, **stack.topics}
    assert harness.run_bounded(command, workdir / "stuck.log", 60, env) == 0


def firing(prometheus: Prometheus) -> set[str]:
    return {
        alert["labels"]["alertname"]
        for alert in prometheus.api("alerts")["alerts"]
        if alert["state"] == "firing"
    }
