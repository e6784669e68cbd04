"""The pure parts of `fraud up`: supervisord's configuration, the parts and their ports from the
settings, Prometheus's targets, the health probe and the leftover-process lookup."""

from __future__ import annotations

import configparser
import http.server
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from cli.stack import (
    PROMETHEUS_SOURCE,
    _group_members,
    build_stack,
    probe,
    write_prometheus_config,
)
from infra.settings import StackSettings
from infra.supervisor import Program, Supervisor
from tests.harness import free_port

PORTS = {
    "FRAUD_KAFKA_BOOTSTRAP": "127.0.0.1:19092",
    "FRAUD_MLFLOW_PORT": "15000",
    "FRAUD_API_PORT": "18000",
    "FRAUD_SCORER_METRICS_PORT": "18001",
    "FRAUD_MONITOR_METRICS_PORT": "18002",
    "FRAUD_PROMETHEUS_PORT": "19090",
}


def test_supervisord_config_runs_each_program_with_its_log_and_environment(tmp_path: Path) -> None:
    supervisor = Supervisor(run_dir=tmp_path / "run", log_dir=tmp_path / "logs")
    programs = [
        Program("web", ["server", "--format", "50%"], tmp_path, {"NAME": 'say "hi" 100%'}, 7),
        Program("worker", ["worker"], tmp_path),
    ]
    parser = configparser.RawConfigParser()
    parser.read_string(supervisor.render(programs))

    web = parser["program:web"]
    assert web["command"] == "server --format 50%%"  # supervisord expands %(...)s: doubled
    assert web["environment"] == 'NAME="say \\"hi\\" 100%%"'
    assert web["stopwaitsecs"] == "7"
    assert web["autorestart"] == "true"
    assert web["stdout_logfile"] == str(tmp_path / "logs" / "web.log")
    assert "environment" not in parser["program:worker"]
    assert parser["unix_http_server"]["file"] == str(supervisor.socket)
    assert parser["supervisorctl"]["serverurl"] == f"unix://{supervisor.socket}"


def test_stack_parts_and_ports_follow_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in PORTS.items():
        monkeypatch.setenv(name, value)
    stack = build_stack(StackSettings())

    urls = {part.name: part.url for part in stack.parts}
    assert urls == {
        "kafka": "127.0.0.1:19092",
        "mlflow": "http://127.0.0.1:15000",
        "scorer": "http://127.0.0.1:18001/metrics",
        "api": "http://127.0.0.1:18000/docs",
        "monitor": "http://127.0.0.1:18002/report",
        "prometheus": "http://127.0.0.1:19090",
    }
    assert {p.name: p.probe for p in stack.parts}["kafka"] == "kafka://127.0.0.1:19092"
    assert {port for _, _, port in stack.ports} >= {19092, 15000, 18000, 18001, 18002, 19090}
    # supervisord runs each part through the launcher, which becomes the part's own command
    for program in stack.programs:
        assert program.command[-2:] == ["stack-part", program.name]
    assert stack.commands["mlflow"][-2:] == ["--port", "15000"]
    assert "--web.listen-address=127.0.0.1:19090" in stack.commands["prometheus"]
    # the serving parts read the registry through the stack's MLflow server
    environments = {p.name: p.environment for p in stack.programs}
    for name in ("scorer", "api", "monitor"):
        assert environments[name]["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:15000"
    assert stack.scrape_targets == {
        "scorer": "127.0.0.1:18001",
        "api": "127.0.0.1:18000",
        "monitor": "127.0.0.1:18002",
    }


def test_prometheus_config_copy_points_at_the_stack_ports(tmp_path: Path) -> None:
    targets = {"scorer": "127.0.0.1:18001", "api": "127.0.0.1:18000", "monitor": "127.0.0.1:18002"}
    config = write_prometheus_config(tmp_path, targets)

    original = yaml.safe_load((PROMETHEUS_SOURCE / "prometheus.yml").read_text())
    assert yaml.safe_load(config.read_text()) == original
    for service, address in targets.items():
        (group,) = json.loads((config.parent / "targets" / f"{service}.json").read_text())
        assert group["targets"] == [address]
        assert group["labels"] == {"service": service}
    rules = sorted(p.name for p in (config.parent / "rules").glob("*.yml"))
    assert rules == sorted(p.name for p in (PROMETHEUS_SOURCE / "rules").glob("*.yml"))
    # again: the copy is replaced, not merged into
    assert write_prometheus_config(tmp_path, targets) == config


class _Status(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/ready" else 503)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def http_port() -> Iterator[int]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Status)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_probe_is_healthy_only_on_200(http_port: int) -> None:
    assert probe(f"http://127.0.0.1:{http_port}/ready") is None
    assert probe(f"http://127.0.0.1:{http_port}/down") == (
        f"HTTP 503 from http://127.0.0.1:{http_port}/down"
    )
    closed = free_port()
    problem = probe(f"http://127.0.0.1:{closed}/ready", timeout=1)
    assert problem is not None and problem.startswith("no answer from")


def test_group_members_lists_this_process_group() -> None:
    members = _group_members(os.getpgrp())
    assert os.getpid() in members
    assert _group_members(2**22 + 17) == []  # above pid_max's default: no such group
