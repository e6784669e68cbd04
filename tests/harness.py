"""What the integration tests and the benchmarks share: the services they start (`fraud score`,
`fraud api`, `fraud monitor`, `fraud mlflow`, each in its own process group), free ports,
/metrics samples, Kafka topics and brokers; then, for the benchmarks, process CPU and memory,
percentiles, the model under test and the JSON report."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Self

import numpy as np
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:
    from infra.settings import BrokerSettings, KafkaSettings
    from serving.kafka_broker import StartResult

ROOT = Path(__file__).resolve().parents[1]
FRAUD = str(Path(sys.executable).parent / "fraud")  # the project's command, next to this Python
console = Console(stderr=True, soft_wrap=True)


class HarnessError(RuntimeError):
    """A service or a measurement failed; the message says how, with the end of a log."""


def free_port() -> int:
    """A free TCP port on 127.0.0.1, for servers the tests and benchmarks start."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(
    predicate: Callable[[], bool], timeout: float, what: str, poll: float = 0.1
) -> float:
    """Call `predicate` every `poll` s until it is true; the seconds waited."""
    began = time.monotonic()
    while not predicate():
        if time.monotonic() - began > timeout:
            raise HarnessError(f"waited {timeout:.0f} s for {what}")
        time.sleep(poll)
    return time.monotonic() - began


# -- /metrics ----------------------------------------------------------------------------------


def parse_metrics(text: str) -> list[Sample]:
    """The samples of a Prometheus text exposition, read by prometheus_client's own parser."""
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def sample_value(samples: Iterable[Sample], name: str, labels: str = "") -> float:
    """The value of the sample `name{labels}` (exactly those labels, in any order); 0 if absent."""
    wanted = parse_metrics(f"x{{{labels}}} 0\n")[0].labels if labels else {}
    return next((s.value for s in samples if s.name == name and s.labels == wanted), 0.0)


def sample_total(samples: Iterable[Sample], name: str) -> float:
    """The sum of `name` over all its label sets."""
    return sum(s.value for s in samples if s.name == name)


# -- services ----------------------------------------------------------------------------------


@dataclass(eq=False)
class Service:
    """A server process in a process group of its own, answering HTTP on 127.0.0.1:`port`, its
    output appended to `log_path`. It can be started again (same port) after it stopped."""

    command: list[str]
    env: Mapping[str, str]
    log_path: Path
    port: int
    cwd: Path = ROOT
    ready_path: str = "/ready"
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    ready_at: float | None = None
    sigterm_sent: bool = False

    def start(self) -> Self:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command, cwd=self.cwd, env=dict(self.env), stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.started_at, self.ready_at, self.sigterm_sent = time.perf_counter(), None, False
        return self

    @property
    def name(self) -> str:
        return " ".join([Path(self.command[0]).name, *self.command[1:2]])

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} was never started"
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, str]:
        """Status and body of GET `path`; status 0 when nothing answered."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
                return int(response.status), response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")
        except (urllib.error.URLError, OSError):
            return 0, ""

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise HarnessError(
                f"{self.name} exited with code {self.process.returncode}; the end of its log:\n"
                f"{self.log_tail()}"
            )

    def poll_ready(self) -> bool:
        """Whether `ready_path` answers 200 (the first time is kept in ready_at)."""
        if self.ready_at is None:
            self.check_alive()
            if self.get(self.ready_path, timeout=1.0)[0] == 200:
                self.ready_at = time.perf_counter()
        return self.ready_at is not None

    def wait_for(
        self, path: str | None = None, status: int = 200, timeout: float = 90.0, poll: float = 0.3
    ) -> float:
        """Poll `path` (default: `ready_path`) until it answers `status`; seconds since start."""
        path = path or self.ready_path
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.get(path, timeout=2.0)[0] == status:
                return time.perf_counter() - self.started_at
            self.check_alive()
            time.sleep(poll)
        raise HarnessError(
            f"{path} of {self.name} did not answer {status} within {timeout:.0f} s; the end of "
            f"its log:\n{self.log_tail()}"
        )

    def wait_ready(self, timeout: float = 90.0) -> float:
        return self.wait_for(timeout=timeout)

    def samples(self) -> list[Sample]:
        """The samples of /metrics; HarnessError when it does not answer 200."""
        status, text = self.get("/metrics")
        if status != 200:
            raise HarnessError(f"{self.url}/metrics of {self.name} answered {status or 'nothing'}")
        return parse_metrics(text)

    def metric(self, name: str, labels: str = "") -> float:
        """One sample's value from /metrics (`name{labels}`, e.g. 'result="success"'); 0 when
        absent."""
        return sample_value(self.samples(), name, labels)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 15) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def signal(self, signum: int) -> None:
        """Send `signum` to the service's own process group (it and its workers) if it runs."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signum)
            self.sigterm_sent |= signum == signal.SIGTERM

    def terminate(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (once) and wait, SIGKILL after `timeout`: the exit code, None if killed."""
        if self.process is None:
            return None
        if not self.sigterm_sent:
            self.signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=30)

    def ensure_stopped(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()


class Scorer(Service):
    """`fraud score` with its /metrics and /ready on a free port."""

    def __init__(
        self, env: Mapping[str, str], log_path: Path, args: Sequence[str] = (), cwd: Path = ROOT
    ) -> None:
        port = free_port()
        command = [FRAUD, "score", "--metrics-port", str(port), *args]
        super().__init__(command, env, log_path, port, cwd)


class ApiServer(Service):
    """`fraud api` on a free port of 127.0.0.1."""

    def __init__(
        self, env: Mapping[str, str], log_path: Path, args: Sequence[str] = (), cwd: Path = ROOT
    ) -> None:
        port = free_port()
        command = [FRAUD, "api", "--host", "127.0.0.1", "--port", str(port), *args]
        super().__init__(command, env, log_path, port, cwd)


class Monitor(Service):
    """`fraud monitor` with its /metrics, /ready, /report and /v1/drift on a free port."""

    def __init__(
        self, env: Mapping[str, str], log_path: Path, args: Sequence[str] = (), cwd: Path = ROOT
    ) -> None:
        port = free_port()
        command = [FRAUD, "monitor", "--metrics-port", str(port), *args]
        super().__init__(command, env, log_path, port, cwd)

    def drift(self) -> dict[str, Any] | None:
        """The latest run's summary (/v1/drift), None before the first run."""
        status, body = self.get("/v1/drift")
        if status == 404:
            return None
        if status != 200:
            raise HarnessError(f"{self.url}/v1/drift of {self.name} answered {status or 'nothing'}")
        summary: dict[str, Any] = json.loads(body)
        return summary


def mlflow_server(env: Mapping[str, str], log_path: Path, port: int, cwd: Path) -> Service:
    """`fraud mlflow` (the MLflow tracking and registry server) on `port`, ready at /health."""
    command = [FRAUD, "mlflow", "--port", str(port)]
    return Service(command, env, log_path, port, cwd, ready_path="/health")


def run_bounded(
    command: Sequence[str], log_path: Path, timeout: float, env: Mapping[str, str] | None = None,
    tick: Callable[[float], None] | None = None, poll: float = 0.1,
) -> int:  # fmt: skip
    """Run a client (a load generator, a replay) in its own process group, output to `log_path`,
    calling `tick(seconds since start)` every `poll` s; its exit code. Killed (process group)
    once `timeout` s have passed or on any exception."""
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=None if env is None else dict(env), stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    began = time.monotonic()
    try:
        while (code := process.poll()) is None:
            if time.monotonic() - began > timeout:
                raise HarnessError(f"{command[0]} was still running after {timeout:.0f} s")
            if tick is not None:
                tick(time.monotonic() - began)
            time.sleep(poll)
        return code
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


# -- Kafka -------------------------------------------------------------------------------------

TOPIC_VARIABLES = (
    "FRAUD_TOPIC_TRANSACTIONS",
    "FRAUD_TOPIC_PREDICTIONS",
    "FRAUD_TOPIC_DEAD_LETTERS",
    "FRAUD_TOPIC_LABELS",
    "FRAUD_TOPIC_LABEL_DEAD_LETTERS",
    "FRAUD_TOPIC_SHADOW_PREDICTIONS",
)


def new_topics(
    bootstrap: str, label: str = "", partitions: int = 3, transactions: str | None = None
) -> dict[str, str]:
    """Fresh transactions, predictions and dead-letter topics (named after `label`; the
    transactions topic reused when given), as the FRAUD_ variables that point a process at them."""
    from kafka.admin import KafkaAdminClient, NewTopic

    from infra.settings import KafkaSettings

    tag = f"{label}-{uuid.uuid4().hex[:8]}" if label else uuid.uuid4().hex[:8]
    names = [
        transactions or f"transactions-{tag}",
        *(f"{topic}-{tag}" for topic in KafkaSettings().topics[1:]),
    ]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="harness")
    try:
        admin.create_topics(
            [NewTopic(name, partitions, 1) for name in names[transactions is not None :]],
            timeout_ms=30_000,
            wait_for_metadata=True,
        )
    finally:
        admin.close()
    return {
        **dict(zip(TOPIC_VARIABLES, names, strict=True)),
        "FRAUD_TOPIC_PARTITIONS": str(partitions),
        "FRAUD_KAFKA_BOOTSTRAP": bootstrap,
    }


def kafka_settings(env: Mapping[str, str]) -> KafkaSettings:
    """The KafkaSettings a process given the FRAUD_ variables of `new_topics` would read."""
    from infra.settings import KafkaSettings

    return KafkaSettings(
        kafka_bootstrap=env["FRAUD_KAFKA_BOOTSTRAP"],
        topic_transactions=env["FRAUD_TOPIC_TRANSACTIONS"],
        topic_predictions=env["FRAUD_TOPIC_PREDICTIONS"],
        topic_dead_letters=env["FRAUD_TOPIC_DEAD_LETTERS"],
        topic_partitions=int(env.get("FRAUD_TOPIC_PARTITIONS", "3")),
    )


@dataclass(frozen=True)
class KafkaBroker:
    """A real Kafka broker on free ports with its own data dir; stop/start keep data and ports."""

    kafka: KafkaSettings
    settings: BrokerSettings

    @classmethod
    def on_free_ports(cls, data_dir: Path) -> KafkaBroker:
        from infra.settings import BrokerSettings, KafkaSettings

        port, controller_port = free_port(), free_port()
        while controller_port == port:
            controller_port = free_port()
        return cls(
            KafkaSettings(kafka_bootstrap=f"127.0.0.1:{port}"),
            BrokerSettings(kafka_data_dir=data_dir, kafka_controller_port=controller_port),
        )

    @property
    def bootstrap(self) -> str:
        return self.kafka.kafka_bootstrap

    @property
    def env(self) -> dict[str, str]:
        """FRAUD_ variables that point a subprocess (`fraud score`, `fraud kafka`) at it."""
        return {
            "FRAUD_KAFKA_BOOTSTRAP": self.bootstrap,
            "FRAUD_KAFKA_DATA_DIR": str(self.settings.kafka_data_dir),
            "FRAUD_KAFKA_CONTROLLER_PORT": str(self.settings.kafka_controller_port),
        }

    def start(self, timeout: float = 60.0) -> StartResult:
        from serving.kafka_broker import start

        return start(self.kafka, self.settings, timeout=timeout)

    def stop(self) -> int | None:
        from serving.kafka_broker import stop

        return stop(self.settings)

    def restart(self) -> StartResult:
        self.stop()
        return self.start()


# -- benchmarks: processes, numbers, the model, the report -------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/<pid>/stat (fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set size) of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise HarnessError(f"/proc/{pid}/status has no VmHWM line")


def group_pids(pgid: int) -> list[int]:
    """The processes of process group `pgid` (a server and its workers)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[2]) == pgid:
                pids.append(int(stat.parent.name))
    return sorted(pids)


def group_cpu_seconds(pgid: int) -> dict[int, float]:
    cpu = {}
    for pid in group_pids(pgid):
        with contextlib.suppress(OSError):
            cpu[pid] = cpu_seconds(pid)
    return cpu


def percentiles(values: Sequence[float] | np.ndarray[Any, Any]) -> dict[str, float]:
    """count, p50/p90/p99/max/mean in ms of latencies given in ms."""
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        return {"count": 0}
    p50, p90, p99 = np.percentile(array, [50, 90, 99])
    figures = {"p50_ms": p50, "p90_ms": p90, "p99_ms": p99, "max_ms": array.max()}
    figures["mean_ms"] = array.mean()
    return {"count": int(array.size), **{k: round(float(v), 2) for k, v in figures.items()}}


def median(values: Iterable[float]) -> float:
    return round(statistics.median(values), 2)


def median_at(runs: Sequence[Mapping[str, Any]], *path: str) -> float | None:
    """The median over `runs` of the figure at `path`; runs without it are skipped."""
    values = []
    for run in runs:
        value: Any = run
        with contextlib.suppress(KeyError, TypeError):
            for key in path:
                value = value[key]
            if value is not None:
                values.append(float(value))
    return median(values) if values else None


_NOISE = re.compile(r"^\S+ \S+ |0x[0-9a-f]+|\d+(\.\d+)?")


def log_issues(text: str) -> dict[str, int]:
    """Warning and error lines of a log, numbers and addresses masked, counted (8 at most)."""
    issues: Counter[str] = Counter()
    for line in text.splitlines():
        if any(word in line for word in (" WARNING ", " ERROR ", " CRITICAL ", "Traceback")):
            issues[_NOISE.sub("#", line).strip()[:240]] += 1
    return dict(issues.most_common(8))


@dataclass(frozen=True)
class ModelChoice:
    """The registered version a benchmark measures, and why that one."""

    name: str
    alias: str
    version: str
    threshold: float
    alias_chosen_because: str
    tracking_uri: str

    @classmethod
    def choose(cls) -> ModelChoice:
        """FRAUD_MODEL_ALIAS if set; else production if the registry has it; else challenger."""
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        from infra.settings import ModelSettings

        client, name = MlflowClient(), ModelSettings().model_name
        uri = os.environ["MLFLOW_TRACKING_URI"]
        try:
            aliases = dict(client.get_registered_model(name).aliases)
        except MlflowException as exc:
            raise HarnessError(f"no model '{name}' in {uri}: run `make demo` first") from exc
        if wanted := os.environ.get("FRAUD_MODEL_ALIAS", "").strip():
            alias, why = wanted, "FRAUD_MODEL_ALIAS"
        elif "production" in aliases:
            alias, why = "production", "FRAUD_MODEL_ALIAS unset; production is set"
        else:
            alias, why = "challenger", "FRAUD_MODEL_ALIAS unset and production not set"
        if alias not in aliases:
            raise HarnessError(f"{name} has no alias '{alias}' (it has {sorted(aliases)})")
        version = client.get_model_version(name, str(aliases[alias]))
        threshold = float(version.tags.get("threshold", "nan"))
        console.print(f"model {name}@{alias} = version {version.version} ({why}); store {uri}")
        return cls(name, alias, str(version.version), threshold, why, uri)

    def env(self) -> dict[str, str]:
        """The environment of a service that must serve this very version."""
        return {**os.environ, "FRAUD_MODEL_NAME": self.name, "FRAUD_MODEL_ALIAS": self.alias}

    def download(self, folder: Path) -> Path:
        """The version's native xgboost model file (its MLflow xgboost flavor's data)."""
        import yaml
        from mlflow import MlflowClient
        from mlflow.artifacts import download_artifacts

        uri = MlflowClient().get_model_version_download_uri(self.name, self.version)
        local = Path(download_artifacts(artifact_uri=uri, dst_path=str(folder)))
        flavor = yaml.safe_load((local / "MLmodel").read_text())["flavors"].get("xgboost")
        if not flavor:
            raise HarnessError(f"{self.name} version {self.version} has no xgboost flavor")
        return local / str(flavor["data"])


def progress_bars(unit: str | None = None) -> Progress:
    """Progress bars on stderr: what, a bar, how much is done (of the total, or in `unit`)."""
    done = MofNCompleteColumn() if unit is None else TextColumn(f"{{task.completed:.0f}} {unit}")
    bars = (TextColumn("{task.description}"), BarColumn(), done, TimeElapsedColumn())
    return Progress(*bars, console=console)


def git_commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        head, dirty = git("rev-parse", "HEAD"), git("status", "--porcelain")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}{' (uncommitted changes)' if dirty else ''}"


def flatten(tree: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in tree.items():
        if isinstance(value, Mapping):
            yield from flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def print_summary(report: Mapping[str, Any]) -> None:
    """The medians and targets of a report as one table."""
    table = Table(title=f"{report['benchmark']}: medians of {report['settings']['runs']} run(s)")
    for column in ("figure", "median", "target"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    for name, value in flatten(report["medians"]):
        table.add_row(name, f"{value:,}" if isinstance(value, int | float) else str(value), "")
    for name, goal in report["targets"].items():
        verdict = f"{goal['target']} {'met' if goal['met'] else 'NOT met'}"
        table.add_row(f"target: {name}", f"{goal['measured']}", verdict)
    Console(soft_wrap=True, width=max(Console().width, 110)).print(table)
    for key in ("incidents", "problems"):
        for item in report.get(key, []):
            console.print(f"[bold red]{key[:-1]}: {item}")


def _raise_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(f"{signal.Signals(signum).name} received: stopping what was started")


def run_benchmark(
    out: Path, source: Path, log_dir: Path | None, measure: Callable[[Path, Path], dict[str, Any]]
) -> None:
    """Run `measure(workdir, logs)` with a temporary work dir, stopping what it started on
    SIGTERM or Ctrl-C; write its report, with the machine and the wall time, to `out`."""
    if not source.is_file():
        sys.exit(f"{source.relative_to(ROOT)} is missing: run `make demo` first to create it.")
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{ROOT / 'mlflow.db'}")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in background
    began, load = time.perf_counter(), [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix=f"bench-{out.stem}-") as tmp:
        logs = log_dir or Path(tmp) / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        try:
            report: dict[str, Any] = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
            report |= {"git_commit": git_commit(), **measure(Path(tmp), logs)}
        except HarnessError as exc:
            sys.exit(f"bench-{out.stem} failed: {exc}")
        except KeyboardInterrupt:
            sys.exit(f"bench-{out.stem} interrupted; what it started is stopped.")
    end = [round(x, 2) for x in os.getloadavg()]
    report["machine"] = {
        "cpus": os.cpu_count(), "python": platform.python_version(), **report.get("machine", {}),
        "load_average_at_start": load, "load_average_at_end": end,
    }  # fmt: skip
    report["wall_seconds"] = round(time.perf_counter() - began, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print_summary(report)
    console.print(f"wall time {report['wall_seconds']:.0f} s -> {out.relative_to(ROOT)}")
