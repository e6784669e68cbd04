"""`fraud up|down|status`: the whole system on this machine, without Docker, under supervisord.

The parts: the Kafka broker (`fraud kafka run`), the MLflow server over the project's store
(`fraud mlflow`), the stream scorer, the REST API, the drift monitor and Prometheus (Debian's
binary, with the repo's configuration and alert rules). They start together in any order: the
scorer, API and monitor wait for the broker and for a version under the production alias, and
say in their logs what they wait for. Logs are in `.run/logs/<part>.log`.

A part is healthy when its own health endpoint says so (HTTP /ready, /health or /-/ready; the
broker answering a metadata request with the topics), not merely when its process exists.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from cli.errors import err_console, fail, invalid_settings
from infra.paths import project_root
from infra.settings import (
    ApiSettings,
    BrokerSettings,
    KafkaSettings,
    MonitorSettings,
    RegistryAuthSettings,
    ScorerSettings,
    StackSettings,
    TrackingSettings,
)
from infra.supervisor import ProcessState, Program, Supervisor, SupervisorError

console = Console(soft_wrap=True)

# The repo's Prometheus configuration and rules, shipped with this code.
PROMETHEUS_SOURCE = Path(__file__).resolve().parents[1] / "monitoring" / "prometheus"
PROBE_TIMEOUT_SECONDS = 3.0
# The parts that only read the registry: with FRAUD_MLFLOW_AUTH they log in as the reader.
READERS = ("scorer", "api", "monitor")


@dataclass(frozen=True)
class Part:
    """A part of the stack as `fraud status` shows it: where a user opens it, and what answers
    whether it is healthy (an HTTP URL, or kafka://host:port)."""

    name: str
    url: str
    probe: str


@dataclass(frozen=True)
class Stack:
    parts: list[Part]
    # What supervisord runs: `fraud stack-part NAME`, which becomes commands[NAME].
    programs: list[Program]
    commands: dict[str, list[str]]
    # (setting, host, port) of every listening port, checked free before a start.
    ports: list[tuple[str, str, int]]
    # What Prometheus scrapes: service → host:port.
    scrape_targets: dict[str, str]


def _supervisor(settings: StackSettings) -> Supervisor:
    return Supervisor(run_dir=settings.run_dir / "supervisor", log_dir=settings.run_dir / "logs")


def _host_port(bootstrap: str) -> tuple[str, int]:
    host, _, port = bootstrap.split(",")[0].strip().rpartition(":")
    return host, int(port)


def _display_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else host


def write_prometheus_config(run_dir: Path, targets: dict[str, str]) -> Path:
    """A copy of the repo's Prometheus configuration whose target files point at `targets`
    (service → host:port), so the stack's ports may differ from the defaults the repo's
    targets/*.json name. Returns the configuration file."""
    config = run_dir / "prometheus" / "config"
    if config.exists():
        shutil.rmtree(config)
    shutil.copytree(PROMETHEUS_SOURCE, config, ignore=shutil.ignore_patterns("tests"))
    for service, address in targets.items():
        path = config / "targets" / f"{service}.json"
        groups = json.loads(path.read_text())
        for group in groups:
            group["targets"] = [address]
        path.write_text(json.dumps(groups) + "\n")
    return config / "prometheus.yml"


def build_stack(settings: StackSettings) -> Stack:
    """The parts, their supervisord programs and their ports, from the settings in force."""
    root = project_root()
    kafka, broker = KafkaSettings(), BrokerSettings()
    scorer, monitor, api = ScorerSettings(), MonitorSettings(), ApiSettings()
    python = [sys.executable, "-m", "cli"]
    mlflow_url = f"http://127.0.0.1:{settings.mlflow_port}"
    # The serving parts read the registry through the server, as they would in production;
    # MLflow's client variables of MLFLOW_CLIENT_DEFAULTS are added by the commands themselves.
    serving_env = {"MLFLOW_TRACKING_URI": mlflow_url}
    kafka_host, kafka_port = _host_port(kafka.kafka_bootstrap)
    scorer_host = _display_host(scorer.scorer_metrics_host)
    monitor_host = _display_host(monitor.monitor_metrics_host)
    api_url = f"http://{_display_host(api.api_host)}:{api.api_port}"
    scorer_url = f"http://{scorer_host}:{scorer.scorer_metrics_port}"
    monitor_url = f"http://{monitor_host}:{monitor.monitor_metrics_port}"
    prometheus_url = f"http://127.0.0.1:{settings.prometheus_port}"
    prometheus_config = settings.run_dir / "prometheus" / "config" / "prometheus.yml"
    parts = [
        Part("kafka", kafka.kafka_bootstrap, f"kafka://{kafka.kafka_bootstrap}"),
        Part("mlflow", mlflow_url, f"{mlflow_url}/health"),
        Part("scorer", f"{scorer_url}/metrics", f"{scorer_url}/ready"),
        Part("api", f"{api_url}/docs", f"{api_url}/ready"),
        Part("monitor", f"{monitor_url}/report", f"{monitor_url}/ready"),
        Part("prometheus", prometheus_url, f"{prometheus_url}/-/ready"),
    ]
    commands = {
        "kafka": [*python, "kafka", "run"],
        "mlflow": [*python, "mlflow", "--port", str(settings.mlflow_port)],
        "scorer": [*python, "score"],
        "api": [*python, "api"],
        "monitor": [*python, "monitor"],
        "prometheus": [
            settings.prometheus_binary,
            f"--config.file={prometheus_config}",
            f"--storage.tsdb.path={settings.run_dir / 'prometheus' / 'data'}",
            f"--web.listen-address=127.0.0.1:{settings.prometheus_port}",
        ],
    }
    environments = {"scorer": serving_env, "api": serving_env, "monitor": serving_env}
    stop_seconds = {"kafka": 60, "scorer": 60}
    programs = [
        Program(
            name,
            [*python, "stack-part", name],
            root,
            environments.get(name, {}),
            stop_seconds.get(name, 20),
        )
        for name in commands
    ]
    ports = [
        ("FRAUD_KAFKA_BOOTSTRAP", kafka_host, kafka_port),
        ("FRAUD_KAFKA_CONTROLLER_PORT", kafka_host, broker.kafka_controller_port),
        ("FRAUD_MLFLOW_PORT", "127.0.0.1", settings.mlflow_port),
        ("FRAUD_SCORER_METRICS_PORT", scorer_host, scorer.scorer_metrics_port),
        ("FRAUD_API_PORT", _display_host(api.api_host), api.api_port),
        ("FRAUD_MONITOR_METRICS_PORT", monitor_host, monitor.monitor_metrics_port),
        ("FRAUD_PROMETHEUS_PORT", "127.0.0.1", settings.prometheus_port),
    ]
    targets = {
        "scorer": f"{scorer_host}:{scorer.scorer_metrics_port}",
        "api": f"{_display_host(api.api_host)}:{api.api_port}",
        "monitor": f"{monitor_host}:{monitor.monitor_metrics_port}",
    }
    return Stack(parts, programs, commands, ports, targets)


def probe(target: str, timeout: float = PROBE_TIMEOUT_SECONDS) -> str | None:
    """None when the part behind `target` is healthy, else why not, in a few words."""
    if target.startswith("kafka://"):
        return _probe_kafka(target.removeprefix("kafka://"), timeout)
    try:
        with urllib.request.urlopen(target, timeout=timeout) as response:
            return None if response.status == 200 else f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code} from {target}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"no answer from {target} ({reason})"


def _probe_kafka(bootstrap: str, timeout: float) -> str | None:
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    expected = set(KafkaSettings().topics)
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            client_id="fraud-status",
            request_timeout_ms=int(timeout * 1000),
            bootstrap_timeout_ms=int(timeout * 1000),
        )
        try:
            topics = set(admin.list_topics())
        finally:
            admin.close()
    except (KafkaError, OSError, ValueError) as exc:
        return f"no answer from {bootstrap} ({type(exc).__name__})"
    missing = sorted(expected - topics)
    return f"topics missing: {', '.join(missing)}" if missing else None


def _state_file(settings: StackSettings) -> Path:
    return settings.run_dir / "stack.json"


def _saved_parts(settings: StackSettings) -> list[Part]:
    """The parts as `fraud up` started them (their ports may come from another shell's
    settings); the current settings' when no stack was started from this folder."""
    try:
        return [Part(**part) for part in json.loads(_state_file(settings).read_text())]
    except (OSError, ValueError, TypeError):
        return build_stack(settings).parts


@dataclass(frozen=True)
class PartStatus:
    part: Part
    process: ProcessState | None
    problem: str | None  # None: healthy

    @property
    def healthy(self) -> bool:
        return self.problem is None and self.process is not None


def check(settings: StackSettings) -> list[PartStatus]:
    """Each part's process state (supervisord's) and health (its own endpoint), probed at once."""
    parts = _saved_parts(settings)
    supervisor = _supervisor(settings)
    states = {p.name: p for p in supervisor.processes()} if supervisor.running() else {}
    with ThreadPoolExecutor(max_workers=len(parts)) as pool:
        problems = list(pool.map(lambda part: probe(part.probe), parts))
    result = []
    for part, problem in zip(parts, problems, strict=True):
        process = states.get(part.name)
        said = [problem] if problem else []
        if process is None:
            problem = "; ".join(["not started by `fraud up`", *said])
        elif process.state != "RUNNING":
            state = process.state.lower()
            problem = "; ".join(
                [f"{state}: {process.description}" if process.description else state, *said]
            )
        result.append(PartStatus(part, process, problem))
    return result


def _print_table(statuses: list[PartStatus], settings: StackSettings) -> None:
    table = Table(title=f"fraud stack (logs in {settings.run_dir / 'logs'})")
    for column in ("part", "state", "pid", "url", "health"):
        table.add_column(column, no_wrap=column != "health")
    for status in statuses:
        process = status.process
        table.add_row(
            status.part.name,
            process.state if process else "-",
            str(process.pid) if process and process.pid else "-",
            status.part.url,
            "[green]healthy[/]" if status.healthy else f"[red]{status.problem}[/]",
        )
    # Not a terminal (a pipe, CI logs): rich would squeeze the table into 80 columns.
    Console(soft_wrap=True, width=max(console.width, 120)).print(table)


def _settings() -> StackSettings:
    try:
        return StackSettings()
    except ValidationError as exc:
        raise invalid_settings(exc) from None


def _port_taken(host: str, port: int) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def up(
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for every part to be healthy.", min=1)
    ] = 240.0,
) -> None:
    """Start the local stack (Kafka, MLflow, scorer, API, drift monitor, Prometheus) under
    supervisord and wait until every part is healthy; a second call starts what is not running."""
    from serving.kafka_broker import BrokerError, ensure_jars

    settings = _settings()
    supervisor = _supervisor(settings)
    try:
        stack = build_stack(settings)
        RegistryAuthSettings()  # the logins the parts need, when FRAUD_MLFLOW_AUTH is on
    except ValidationError as exc:
        raise invalid_settings(exc) from None
    store = TrackingSettings().tracking_uri
    if store.startswith(("http://", "https://")):
        raise fail(
            f"MLFLOW_TRACKING_URI is {store}, a server; `fraud up` runs its own MLflow server "
            "over a database: unset it (the default is the project's mlflow.db)."
        )
    if shutil.which(settings.prometheus_binary) is None:
        raise fail(
            f"no Prometheus binary {settings.prometheus_binary!r} on the PATH; install Debian's "
            "package (apt-get install prometheus) or set FRAUD_PROMETHEUS_BINARY."
        )
    try:
        ensure_jars()
    except BrokerError as exc:
        raise fail(str(exc)) from None
    try:
        if supervisor.running():
            err_console.print(
                "the stack is already under supervisord; starting what is not running"
            )
            supervisor.start_all()
        else:
            taken = [(name, h, p) for name, h, p in stack.ports if _port_taken(h, p)]
            if taken:
                listed = ", ".join(f"{h}:{p} ({name})" for name, h, p in taken)
                raise fail(
                    f"already in use: {listed}; stop what listens there (`fraud kafka stop` for "
                    "a broker of `fraud kafka start`) or set the variable named to a free port."
                )
            write_prometheus_config(settings.run_dir, stack.scrape_targets)
            for record in supervisor.run_dir.glob("*.pgid"):  # an earlier stack's, all ended
                record.unlink()
            _state_file(settings).parent.mkdir(parents=True, exist_ok=True)
            _state_file(settings).write_text(json.dumps([asdict(p) for p in stack.parts]) + "\n")
            supervisor.start(stack.programs)
    except SupervisorError as exc:
        raise fail(str(exc)) from None
    statuses = _wait_healthy(settings, timeout)
    _print_table(statuses, settings)
    if not all(s.healthy for s in statuses):
        unhealthy = [s.part.name for s in statuses if not s.healthy]
        raise fail(
            f"not healthy after {timeout:.0f} s: {', '.join(unhealthy)}; read "
            + ", ".join(str(supervisor.log_file(name)) for name in unhealthy)
            + " (is a version in production? `fraud models`)."
        )
    console.print("stop it with `fraud down`; see it with `fraud status`.")


def _wait_healthy(settings: StackSettings, timeout: float) -> list[PartStatus]:
    began = time.monotonic()
    deadline = began + timeout
    with err_console.status("starting the stack") as spinner:
        while True:
            statuses = check(settings)
            waiting = [s.part.name for s in statuses if not s.healthy]
            if not waiting or time.monotonic() > deadline:
                break
            spinner.update(
                f"waiting for {', '.join(waiting)} ({time.monotonic() - began:.0f} s; "
                f"logs in {settings.run_dir / 'logs'})"
            )
            time.sleep(1.0)
    if not waiting:
        err_console.print(f"every part healthy in {time.monotonic() - began:.0f} s")
    return statuses


def down() -> None:
    """Stop every part of the local stack and supervisord; data and logs stay in .run/."""
    settings = _settings()
    supervisor = _supervisor(settings)
    try:
        pid = supervisor.shutdown()
    except SupervisorError as exc:
        raise fail(str(exc)) from None
    if pid is None:
        console.print("the stack is not running.")
    else:
        console.print(f"stack stopped (supervisord pid {pid}); logs stay in {supervisor.log_dir}.")


def status() -> None:
    """Each part of the local stack: its state, pid, URL and health from its own endpoint;
    exits 1 when any part is not healthy."""
    settings = _settings()
    statuses = check(settings)
    _print_table(statuses, settings)
    if not _supervisor(settings).running():
        console.print("the stack is not running: start it with `fraud up`.")
    else:
        console.print("stop it with `fraud down`.")
    if not all(s.healthy for s in statuses):
        raise typer.Exit(code=1)


def _group_members(pgid: int) -> list[int]:
    """The processes of process group `pgid` (from /proc)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid:  # fields after the command: state, ppid, pgrp, ...
            members.append(int(stat.parent.name))
    return members


def _end_leftovers(record: Path) -> None:
    """End what is left of the part's previous run: supervisord signals only the process it
    started, so when that one was killed outright its children (MLflow's web workers, for
    one) live on, holding the port. They share the process group recorded at its start."""
    import os
    import signal

    try:
        previous = int(record.read_text())
    except (OSError, ValueError):
        return
    if previous == os.getpgrp():
        return
    members = _group_members(previous)
    for pid in members:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while members and time.monotonic() < deadline:
        time.sleep(0.2)
        members = _group_members(previous)
    for pid in members:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def stack_part(name: Annotated[str, typer.Argument(help="The part to run.")]) -> None:
    """Run one part of the stack in the foreground (what supervisord starts for `fraud up`)."""
    import os

    settings = _settings()
    commands = build_stack(settings).commands
    if name not in commands:
        raise fail(f"no part named {name!r}; the parts are {', '.join(commands)}.")
    record = _supervisor(settings).run_dir / f"{name}.pgid"
    _end_leftovers(record)
    record.write_text(f"{os.getpgrp()}\n")
    if name in READERS:
        os.environ.update(reader_login())
    command = commands[name]
    sys.stdout.flush()
    os.execvp(command[0], command)


def reader_login() -> dict[str, str]:
    """MLflow's client variables with the reader's login when the stack's MLflow server asks
    for logins (FRAUD_MLFLOW_AUTH); none otherwise. Set in the part's own process, so the
    password is in no file."""
    try:
        auth = RegistryAuthSettings()
    except ValidationError as exc:
        raise invalid_settings(exc) from None
    if not auth.mlflow_auth or auth.mlflow_reader_password is None:
        return {}
    return {
        "MLFLOW_TRACKING_USERNAME": auth.mlflow_reader_username,
        "MLFLOW_TRACKING_PASSWORD": auth.mlflow_reader_password.get_secret_value(),
    }
