"""A real single-node Apache Kafka 4 broker (KRaft: broker and controller in one JVM) for this box.

`fraud kafka start|stop|status` front these functions. The jars come from ``$KAFKA_HOME/libs`` when
``KAFKA_HOME`` is set, else Maven resolves them once from ``serving/kafka_jars/pom.xml`` into
``.tools/kafka-4.1.1/libs``. Everything the broker writes (``server.properties``, the storage,
``server.log``, ``kafka.pid``) lives in ``FRAUD_KAFKA_DATA_DIR`` (default ``.run/kafka``); a
restart reuses that storage, so messages survive it. The broker listens on the host:port of
``FRAUD_KAFKA_BOOTSTRAP`` and its controller on ``FRAUD_KAFKA_CONTROLLER_PORT``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from infra.settings import BrokerSettings, KafkaSettings

if TYPE_CHECKING:
    from kafka import KafkaAdminClient

KAFKA_VERSION = "4.1.1"
REPO_ROOT = Path(__file__).resolve().parents[1]
POM = REPO_ROOT / "serving" / "kafka_jars" / "pom.xml"
TOOLS_DIR = REPO_ROOT / ".tools" / f"kafka-{KAFKA_VERSION}"
CDS_DIR = REPO_ROOT / ".tools" / "kafka-cds"
MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
NODE_ID = 1
INSTALL_HINT = "install Java 17 and Maven (Debian: apt-get install default-jre-headless maven)"

LOG4J2_PROPERTIES = """\
# Written by `fraud kafka start`: everything to stdout, which is <data dir>/server.log.
status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = WARN
"""


class BrokerError(RuntimeError):
    """The broker cannot be set up, started or stopped; the message says what to fix."""


@dataclass(frozen=True)
class StartResult:
    pid: int
    bootstrap: str
    already_running: bool
    seconds: float
    created_topics: tuple[str, ...] = ()


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    pid: int | None
    bootstrap: str
    data_dir: Path
    answering: bool
    topics: dict[str, int] = field(default_factory=dict)
    rss_bytes: int | None = None


def listen_address(kafka: KafkaSettings, broker: BrokerSettings) -> tuple[str, int]:
    """The one host:port of FRAUD_KAFKA_BOOTSTRAP, which a local broker listens on."""
    servers = [s.strip() for s in kafka.kafka_bootstrap.split(",")]
    if len(servers) != 1:
        raise BrokerError(
            f"FRAUD_KAFKA_BOOTSTRAP={kafka.kafka_bootstrap} lists {len(servers)} servers; "
            "a local broker listens on one, so set it to a single host:port."
        )
    host, _, port_text = servers[0].rpartition(":")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise BrokerError(f"FRAUD_KAFKA_BOOTSTRAP port {port} is not a TCP port (1-65535).")
    if port == broker.kafka_controller_port:
        raise BrokerError(
            f"FRAUD_KAFKA_BOOTSTRAP and FRAUD_KAFKA_CONTROLLER_PORT both use port {port}; "
            "give the controller another port."
        )
    return host, port


def render_server_properties(kafka: KafkaSettings, broker: BrokerSettings) -> str:
    """server.properties of a one-node KRaft cluster sized for a small machine."""
    host, port = listen_address(kafka, broker)
    controller = f"{host}:{broker.kafka_controller_port}"
    settings: dict[str, object] = {
        "process.roles": "broker,controller",
        "node.id": NODE_ID,
        "controller.quorum.voters": f"{NODE_ID}@{controller}",
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{controller}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": broker.log_dir,
        "num.partitions": kafka.topic_partitions,
        "default.replication.factor": 1,
        "min.insync.replicas": 1,
        "auto.create.topics.enable": "false",
        # One node: every internal topic has one replica, and few partitions so start is fast.
        "offsets.topic.replication.factor": 1,
        "offsets.topic.num.partitions": 3,
        "transaction.state.log.replication.factor": 1,
        "transaction.state.log.min.isr": 1,
        "transaction.state.log.num.partitions": 3,
        "share.coordinator.state.topic.replication.factor": 1,
        "share.coordinator.state.topic.min.isr": 1,
        "group.initial.rebalance.delay.ms": 0,
        # A 2-core machine shares its cores with the scorer, the API and the tests.
        "num.network.threads": 2,
        "num.io.threads": 2,
        "background.threads": 2,
        "num.recovery.threads.per.data.dir": 1,
        "log.retention.hours": 168,
    }
    lines = ["# Written by `fraud kafka start` on every start; edits here are overwritten."]
    lines += [f"{key}={value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def libs_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where the broker's jars are: $KAFKA_HOME/libs if KAFKA_HOME is set, else the Maven cache."""
    env = os.environ if environ is None else environ
    home = env.get("KAFKA_HOME", "").strip()
    return Path(home).expanduser() / "libs" if home else TOOLS_DIR / "libs"


def _stamp(libs: Path) -> Path:
    return libs.parent / "libs.stamp"


def ensure_jars(environ: Mapping[str, str] | None = None) -> Path:
    """The libs dir holding the broker's jars, resolved with Maven the first time."""
    env = os.environ if environ is None else environ
    libs = libs_dir(env)
    if env.get("KAFKA_HOME", "").strip():
        if not any(libs.glob("kafka_2.13-*.jar")):
            raise BrokerError(
                f"KAFKA_HOME={env['KAFKA_HOME']} has no libs/kafka_2.13-*.jar: point it at an "
                "unpacked Apache Kafka 4.x distribution, or unset it to fetch the jars with Maven."
            )
        return libs
    stamp = _stamp(libs)
    if stamp.exists() and stamp.stat().st_mtime >= POM.stat().st_mtime:
        return libs
    mvn = shutil.which("mvn", path=env.get("PATH"))
    missing = [name for name in ("java", "mvn") if shutil.which(name, path=env.get("PATH")) is None]
    if mvn is None or missing:
        raise BrokerError(
            f"{' and '.join(missing)} not found on PATH, needed once to fetch the Kafka jars: "
            f"{INSTALL_HINT}, or set KAFKA_HOME to an unpacked Kafka 4.x distribution."
        )
    shutil.rmtree(libs, ignore_errors=True)
    command = [
        mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
        f"-DoutputDirectory={libs}", "-DincludeScope=runtime",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=dict(env), check=False)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()
        tail = " | ".join(line.strip() for line in output[-5:] if line.strip())
        raise BrokerError(
            f"Maven could not resolve the Kafka jars from {POM.relative_to(REPO_ROOT)} (is the "
            f"Maven repository reachable?); it said: {tail or 'nothing'}"
        )
    stamp.touch()
    return libs


def _java(environ: Mapping[str, str]) -> str:
    home = environ.get("JAVA_HOME", "").strip()
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    java = shutil.which("java", path=environ.get("PATH"))
    if java is None:
        raise BrokerError(f"java not found on PATH: {INSTALL_HINT}.")
    return java


def _cluster_id() -> str:
    """A random Kafka cluster id: 16 bytes, URL-safe base64 without padding (as Kafka's Uuid).

    Like Kafka's Uuid.randomUuid, never one starting with '-' (1 in 64 would): kafka-storage's
    argument parser takes `--cluster-id -x...` for a missing value followed by an option.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _read_pid(broker: BrokerSettings) -> int | None:
    try:
        return int(broker.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def _is_our_broker(pid: int, broker: BrokerSettings) -> bool:
    """True if pid is alive and runs kafka.Kafka on this data dir (not a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z" and str(broker.properties_file).encode() in cmdline


def _rss_bytes(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _answers(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _log_tail(broker: BrokerSettings, lines: int = 12) -> str:
    try:
        text = broker.log_file.read_text(errors="replace").splitlines()
    except OSError:
        return "(no server.log)"
    return "\n".join(text[-lines:])


def _format_storage(java: str, libs: Path, broker: BrokerSettings) -> None:
    if (broker.log_dir / "meta.properties").exists():
        return
    command = [
        java, "-Xmx256m", "-cp", f"{libs}/*", STORAGE_TOOL, "format", "--ignore-formatted",
        "--config", str(broker.properties_file), "--cluster-id", _cluster_id(),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    if result.returncode != 0:
        raise BrokerError(
            f"formatting the Kafka storage in {broker.log_dir} failed: "
            f"{(result.stderr or result.stdout).strip()[-600:]}"
        )


def _admin(bootstrap: str, timeout_ms: int = 10_000) -> KafkaAdminClient:
    from kafka import KafkaAdminClient

    return KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="fraud-kafka",
        request_timeout_ms=timeout_ms,
    )


def topic_partitions(bootstrap: str, timeout_ms: int = 10_000) -> dict[str, int]:
    """Every non-internal topic of the broker with its partition count."""
    admin = _admin(bootstrap, timeout_ms)
    try:
        described = admin.describe_topics()
    finally:
        admin.close()
    return {
        str(t["name"]): len(t["partitions"])
        for t in described
        if not t.get("is_internal") and not str(t["name"]).startswith("__")
    }


def _cds_options(java: str, libs: Path, broker: BrokerSettings) -> list[str]:
    """JVM options for a class-data-sharing archive of the broker's classes.

    Loading Kafka's classes from the archive instead of the jars halves the JVM's start-up CPU
    (about 8 s to 4.5 s on a 2-core machine). The first broker without an archive dumps one when
    it exits; stop() moves that dump into place once the broker exited cleanly (see _settle_cds).
    """
    _settle_cds(broker, clean=False)  # a dump left by a broker that stop() did not stop
    key = hashlib.sha256(f"{java}\0{libs.resolve()}".encode()).hexdigest()[:16]
    archive = CDS_DIR / f"kafka-{key}.jsa"
    if archive.exists():
        return [f"-XX:SharedArchiveFile={archive}"]
    CDS_DIR.mkdir(parents=True, exist_ok=True)
    dump = CDS_DIR / f"kafka-{key}.{uuid.uuid4().hex}.tmp"
    (broker.data_dir / "cds.pending").write_text(f"{dump}\n{archive}\n")
    # The dump lists every class it cannot archive as a warning: noise in server.log.
    return [f"-XX:ArchiveClassesAtExit={dump}", "-Xlog:cds*=off"]


def _settle_cds(broker: BrokerSettings, *, clean: bool) -> None:
    """Keep the archive the broker dumped at a clean exit (atomically); drop any other dump."""
    pending = broker.data_dir / "cds.pending"
    try:
        dump, archive = (Path(line) for line in pending.read_text().split())
    except (OSError, ValueError):
        pending.unlink(missing_ok=True)
        return
    with contextlib.suppress(OSError):
        if clean and dump.stat().st_size > 0:
            dump.replace(archive)
    dump.unlink(missing_ok=True)
    pending.unlink(missing_ok=True)


def _create_topics(kafka: KafkaSettings) -> tuple[str, ...]:
    from kafka.admin import NewTopic

    admin = _admin(kafka.kafka_bootstrap)
    try:
        existing = set(admin.list_topics())
        missing = [name for name in kafka.topics if name not in existing]
        if missing:
            admin.create_topics(
                [NewTopic(name, kafka.topic_partitions, 1) for name in missing],
                timeout_ms=30_000,
                wait_for_metadata=True,
            )
    finally:
        admin.close()
    return tuple(missing)


def _check_transactions(bootstrap: str) -> None:
    """Initialise and commit an empty transaction: the transaction coordinator must be usable."""
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        transactional_id="fraud-kafka-start-check",
        client_id="fraud-kafka-start-check",
        max_block_ms=30_000,
    )
    try:
        producer.init_transactions()
        producer.begin_transaction()
        producer.commit_transaction()
    finally:
        producer.close(timeout=5)


def _wait_until_ready(
    process: subprocess.Popen[bytes], host: str, port: int, broker: BrokerSettings, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BrokerError(
                f"the Kafka broker exited with code {process.returncode} while starting; "
                f"the end of {broker.log_file}:\n{_log_tail(broker)}"
            )
        if _answers(host, port):
            return
        time.sleep(0.1)
    raise BrokerError(
        f"the Kafka broker did not answer on {host}:{port} within {timeout:.0f} s; "
        f"the end of {broker.log_file}:\n{_log_tail(broker)}"
    )


def _check_ports_free(host: str, port: int, broker: BrokerSettings) -> None:
    for variable, taken in (
        ("FRAUD_KAFKA_BOOTSTRAP", port),
        ("FRAUD_KAFKA_CONTROLLER_PORT", broker.kafka_controller_port),
    ):
        if _answers(host, taken):
            raise BrokerError(
                f"{host}:{taken} is already taken by another process (not a broker started on "
                f"{broker.data_dir}): stop it, or set {variable} to a free port."
            )


def _broker_command(
    kafka: KafkaSettings, broker: BrokerSettings, env: Mapping[str, str]
) -> list[str]:
    """Write the broker's configuration, format its storage once, and return its java command."""
    libs = ensure_jars(env)
    java = _java(env)
    broker.log_dir.mkdir(parents=True, exist_ok=True)
    broker.properties_file.write_text(render_server_properties(kafka, broker))
    log4j = broker.data_dir / "log4j2.properties"
    log4j.write_text(LOG4J2_PROPERTIES)
    _format_storage(java, libs, broker)
    return [
        java, f"-Xms{broker.kafka_heap}", f"-Xmx{broker.kafka_heap}",
        "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={log4j}",
        *_cds_options(java, libs, broker),
        "-cp", f"{libs}/*", MAIN_CLASS, str(broker.properties_file),
    ]  # fmt: skip


# Brokers this process started, kept so that stop() can reap them (no zombie, no ResourceWarning).
_children: dict[int, subprocess.Popen[bytes]] = {}


def start(
    kafka: KafkaSettings | None = None,
    broker: BrokerSettings | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> StartResult:
    """Start the broker (no-op if it runs), create the topics, check that transactions work."""
    kafka = kafka or KafkaSettings()
    broker = broker or BrokerSettings()
    env = dict(os.environ if environ is None else environ)
    began = time.monotonic()
    host, port = listen_address(kafka, broker)
    pid = _read_pid(broker)
    if pid is not None and _is_our_broker(pid, broker) and _answers(host, port):
        return StartResult(pid, kafka.kafka_bootstrap, True, time.monotonic() - began)
    if pid is not None and _is_our_broker(pid, broker):
        raise BrokerError(
            f"a Kafka broker (pid {pid}) runs on {broker.data_dir} but does not answer on "
            f"{host}:{port}; stop it with `fraud kafka stop` and start again."
        )
    _check_ports_free(host, port, broker)
    command = _broker_command(kafka, broker, env)
    with broker.log_file.open("ab") as log:
        log.write(f"\n==== fraud kafka start {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
        log.flush()
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=broker.data_dir,
            env=env,
            start_new_session=True,
        )
    _children[process.pid] = process
    broker.pid_file.write_text(f"{process.pid}\n")
    try:
        _wait_until_ready(process, host, port, broker, timeout)
        created = _create_topics(kafka)
        _check_transactions(kafka.kafka_bootstrap)
    except Exception as exc:
        stop(broker)
        if isinstance(exc, BrokerError):
            raise
        raise BrokerError(
            f"the Kafka broker started but {type(exc).__name__}: {exc}; "
            f"the end of {broker.log_file}:\n{_log_tail(broker)}"
        ) from exc
    return StartResult(process.pid, kafka.kafka_bootstrap, False, time.monotonic() - began, created)


def _die_with_parent() -> None:
    """In the broker's process before exec: SIGKILL it when this process dies, however that
    happens. A process manager that restarts a killed `fraud kafka run` would otherwise find
    the orphaned broker still holding the port and the data directory."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def run(
    kafka: KafkaSettings | None = None,
    broker: BrokerSettings | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    timeout: float = 60.0,
    on_ready: Callable[[tuple[str, ...]], None] | None = None,
) -> int:
    """Run the broker in the foreground, as a process manager wants it: its log on this
    process's stdout, SIGTERM and SIGINT passed on to it, the topics created once it answers.
    Returns the broker's exit code (0 after a clean stop)."""
    kafka = kafka or KafkaSettings()
    broker = broker or BrokerSettings()
    env = dict(os.environ if environ is None else environ)
    host, port = listen_address(kafka, broker)
    pid = _read_pid(broker)
    if pid is not None and _is_our_broker(pid, broker):
        raise BrokerError(
            f"a Kafka broker (pid {pid}, `fraud kafka start`) already runs on {broker.data_dir}; "
            "stop it with `fraud kafka stop` first."
        )
    _check_ports_free(host, port, broker)
    process = subprocess.Popen(
        _broker_command(kafka, broker, env),
        stdin=subprocess.DEVNULL,
        cwd=broker.data_dir,
        env=env,
        preexec_fn=_die_with_parent,
    )
    _children[process.pid] = process
    broker.pid_file.write_text(f"{process.pid}\n")
    stopping = False

    def pass_on(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signum)

    previous = {sig: signal.signal(sig, pass_on) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        deadline = time.monotonic() + timeout
        while not stopping and process.poll() is None and not _answers(host, port):
            if time.monotonic() > deadline:
                raise BrokerError(
                    f"the Kafka broker did not answer on {host}:{port} in {timeout:.0f} s"
                )
            time.sleep(0.1)
        if not stopping and process.poll() is None:
            try:
                created = _create_topics(kafka)
                _check_transactions(kafka.kafka_bootstrap)
            except Exception as exc:
                raise BrokerError(
                    f"the Kafka broker started but {type(exc).__name__}: {exc}"
                ) from exc
            if on_ready is not None:
                on_ready(created)
        code = process.wait()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        code = process.wait()
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _children.pop(process.pid, None)
        _settle_cds(broker, clean=stopping)
        broker.pid_file.unlink(missing_ok=True)
    # A broker stopped by the signal passed on exits 143 (killed by SIGTERM, to the JVM's
    # mind); for the process manager that is the expected, clean exit.
    return 0 if stopping else code


def _exited(pid: int, broker: BrokerSettings) -> bool:
    child = _children.get(pid)
    if child is not None:
        return child.poll() is not None
    return not _is_our_broker(pid, broker)


def _wait_exit(pid: int, broker: BrokerSettings, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _exited(pid, broker):
            return True
        time.sleep(0.1)
    return _exited(pid, broker)


def stop(broker: BrokerSettings | None = None, *, timeout: float = 30.0) -> int | None:
    """Stop the broker (SIGTERM, then SIGKILL after ``timeout`` s); the pid stopped, or None."""
    broker = broker or BrokerSettings()
    pid = _read_pid(broker)
    stopped: int | None = None
    clean = False
    if pid is not None and not _exited(pid, broker):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        clean = _wait_exit(pid, broker, timeout)
        if not clean:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            if not _wait_exit(pid, broker, 10.0):
                raise BrokerError(
                    f"the Kafka broker (pid {pid}) survived SIGKILL; check it with `ps -p {pid}`."
                )
        stopped = pid
    if pid is not None:
        _children.pop(pid, None)
    _settle_cds(broker, clean=clean)
    broker.pid_file.unlink(missing_ok=True)
    return stopped


def status(
    kafka: KafkaSettings | None = None, broker: BrokerSettings | None = None
) -> BrokerStatus:
    """Whether our broker runs, and the topics it has (when it answers)."""
    kafka = kafka or KafkaSettings()
    broker = broker or BrokerSettings()
    host, port = listen_address(kafka, broker)
    pid = _read_pid(broker)
    running = pid is not None and not _exited(pid, broker)
    answering = _answers(host, port)
    topics: dict[str, int] = {}
    if answering:
        from kafka.errors import KafkaError

        with contextlib.suppress(KafkaError):
            topics = topic_partitions(kafka.kafka_bootstrap)
    return BrokerStatus(
        running=running,
        pid=pid if running else None,
        bootstrap=kafka.kafka_bootstrap,
        data_dir=broker.data_dir,
        answering=answering,
        topics=topics,
        rss_bytes=_rss_bytes(pid) if running and pid is not None else None,
    )
