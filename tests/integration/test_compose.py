"""docker-compose.yml, the Dockerfile and .dockerignore, checked without a Docker engine (none
runs here).

Docker Compose's own loader, compose-go (tests/compose/composecheck, built into .tools/ by `make
test`), validates the file against the compose specification, interpolates it, normalises it and
checks its consistency; a file it refuses is one `docker compose` refuses. The tests then check
the normalised model against the code: every command a service runs exists and parses, every
variable it sets is one the settings read, every mounted file is in the repository, the ports
are DESIGN.md's and published on 127.0.0.1 only, images are pinned, and every service waits on
the health of what it needs.
"""

from __future__ import annotations

import copy
import fnmatch
import importlib.util
import inspect
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from pathlib import Path, PurePosixPath
from typing import Any, Protocol
from urllib.parse import urlsplit

import pytest
import typer.core
import typer.main
import yaml
from pydantic_settings import BaseSettings

from cli.app import app as fraud_app
from infra import settings as settings_module
from infra.paths import TEST_SPLIT_FILE
from infra.registry import LOGIN_VARIABLES
from infra.settings import (
    MLFLOW_CLIENT_DEFAULTS,
    ApiSettings,
    BrokerSettings,
    KafkaSettings,
    MonitorSettings,
    RegistryAuthSettings,
    ScorerSettings,
)
from serving.kafka_broker import render_server_properties

Json = dict[str, Any]

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
COMPOSECHECK = REPO_ROOT / ".tools" / "composecheck" / "composecheck"
DESIGN_FILE = REPO_ROOT.parent / "shared" / "DESIGN.md"
PROMETHEUS_DIR = REPO_ROOT / "monitoring" / "prometheus"
GRAFANA_DIR = REPO_ROOT / "monitoring" / "grafana"

# The stack issue 11 asks for, by service name.
SERVICES = {
    "kafka", "kafka-init", "postgres", "mlflow", "trainer", "scorer", "api", "monitor", "replay",
    "prometheus", "grafana",
}  # fmt: skip
# The only services a person opens; everything else stays inside the compose network.
PUBLISHED = {"kafka", "mlflow", "api", "monitor", "prometheus", "grafana"}
# DESIGN.md's names in its port list, and the services they are.
DESIGN_NAMES = {
    "Kafka": "kafka", "MLflow": "mlflow", "API": "api", "scorer metrics": "scorer",
    "monitor": "monitor", "Prometheus": "prometheus", "Grafana": "grafana",
}  # fmt: skip
# The services of `fraud score|api|monitor`: their settings class, the fields of the interface
# and port they listen on, and their Prometheus job.
LISTENERS: dict[str, tuple[type[BaseSettings], str, str, str]] = {
    "scorer": (ScorerSettings, "scorer_metrics_host", "scorer_metrics_port", "fraud-scorer"),
    "api": (ApiSettings, "api_host", "api_port", "fraud-api"),
    "monitor": (MonitorSettings, "monitor_metrics_host", "monitor_metrics_port", "fraud-monitor"),
}
WAIT_CONDITIONS = {"service_healthy", "service_completed_successfully"}
SHELLS = {"sh", "/bin/sh", "bash", "/bin/bash"}
# A version tag: `v3.5.0`, `4.1.1`, `17.6`, `12.1.1-ubuntu`; never `latest` or a bare major.
PINNED_TAG = re.compile(r"^v?\d+\.\d+(\.\d+)?([-.][\w.]+)?$")
SETTINGS_PREFIXES = ("FRAUD_", "MLFLOW_", "PROMETHEUS_")
# The broker properties a single node needs set (every internal topic with one replica) and the
# topic defaults: compose's broker must agree with `fraud kafka start` on them.
SINGLE_NODE_PROPERTIES = re.compile(
    r"replication\.factor|min\.isr|min\.insync|^num\.partitions$|^auto\.create"
)


# What a user must set (in .env) for the file to load: the registry's passwords.
REQUIRED_VARIABLES = {
    "FRAUD_MLFLOW_EDITOR_PASSWORD": "editor-password-from-env",
    "FRAUD_MLFLOW_READER_PASSWORD": "reader-password-from-env",
}


def load_compose(
    path: Path, variables: dict[str, str] = REQUIRED_VARIABLES
) -> subprocess.CompletedProcess[str]:
    assert COMPOSECHECK.is_file(), (
        f"{COMPOSECHECK.relative_to(REPO_ROOT)} is missing: `make test` builds it "
        f"(or `make {COMPOSECHECK.relative_to(REPO_ROOT)}`, which needs Go)"
    )
    # None of the caller's variables but `variables`: the file's own defaults are what is
    # checked.
    return subprocess.run(
        [str(COMPOSECHECK), str(path)],
        env={"PATH": os.environ.get("PATH", ""), **variables},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def model() -> Json:
    result = load_compose(COMPOSE_FILE)
    assert result.returncode == 0, f"compose-go refused docker-compose.yml:\n{result.stderr}"
    loaded: Json = json.loads(result.stdout)
    return loaded


@pytest.fixture(scope="module")
def services(model: Json) -> dict[str, Json]:
    found: dict[str, Json] = model["services"]
    return found


@pytest.fixture(scope="module")
def ours(services: dict[str, Json]) -> dict[str, Json]:
    """The services that run the project's image (built from the Dockerfile)."""
    return {name: service for name, service in services.items() if "build" in service}


@pytest.fixture
def no_settings_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings built in a test see only what the test sets, not the caller's environment."""
    for name in list(os.environ):
        if name.startswith(SETTINGS_PREFIXES):
            monkeypatch.delenv(name)


def argv(service: Json) -> list[str]:
    """What the container runs: the Dockerfile has no ENTRYPOINT (test_dockerfile), so a service
    without one runs its command as is."""
    return [*(service.get("entrypoint") or []), *(service.get("command") or [])]


def shell_script(service: Json) -> str | None:
    """The script of a service that runs `sh -c SCRIPT` (any flags), else None."""
    words = argv(service)
    if words and words[0] in SHELLS and any(w.startswith("-") and "c" in w for w in words[1:-1]):
        return words[-1]
    return None


def environment(service: Json) -> dict[str, str]:
    return {name: value or "" for name, value in (service.get("environment") or {}).items()}


def bind_mounts(service: Json) -> dict[str, Path]:
    """Container path -> host path of the service's bind mounts."""
    return {
        volume["target"]: Path(volume["source"])
        for volume in service.get("volumes") or []
        if volume["type"] == "bind"
    }


def named_volumes(service: Json) -> dict[str, Json]:
    """Container path -> the mount, for the service's named volumes."""
    return {
        volume["target"]: volume
        for volume in service.get("volumes") or []
        if volume["type"] == "volume"
    }


class Command(Protocol):
    """A click command: MLflow's, or one of `fraud` (Typer carries its own copy of click)."""

    def make_context(self, info_name: str | None, args: list[str]) -> Any: ...


def fraud_commands() -> dict[str, Command]:
    group = typer.main.get_command(fraud_app)
    assert isinstance(group, typer.core.TyperGroup)
    return dict(group.commands)


def mlflow_commands() -> dict[str, Command]:
    from mlflow.cli import cli as mlflow_cli

    return dict(mlflow_cli.commands)


def check_dvc(arguments: list[str]) -> None:
    from dvc.cli import parse_args

    parse_args(arguments)  # argparse: exits (SystemExit) on an unknown command or option


def parse(commands: dict[str, Command], words: list[str]) -> Any:
    """Parse `words` (subcommand and options) as the CLI would, without running anything."""
    assert words, "no subcommand"
    assert words[0] in commands, f"no subcommand {words[0]!r}; there are {sorted(commands)}"
    return commands[words[0]].make_context(words[0], list(words[1:]))


def settings_classes() -> list[type[BaseSettings]]:
    return [
        member
        for _, member in inspect.getmembers(settings_module, inspect.isclass)
        if issubclass(member, BaseSettings) and member.__module__ == settings_module.__name__
    ]


def variables_read() -> set[str]:
    """Every variable some settings class of infra/settings.py reads: `FRAUD_` + the field's
    name, or the field's own alias (MLFLOW_TRACKING_URI, PROMETHEUS_MULTIPROC_DIR)."""
    names: set[str] = set()
    for cls in settings_classes():
        prefix = str(cls.model_config.get("env_prefix", ""))
        for field_name, field in cls.model_fields.items():
            alias = field.validation_alias
            names.add(alias if isinstance(alias, str) else f"{prefix}{field_name}".upper())
    return names


# Grafana's port is its own default; the others are the defaults of the project's settings.
GRAFANA_PORT = 3000


def settings_ports() -> dict[str, int]:
    """Service -> the port the project's settings give it by default (the native stack's)."""
    from infra.settings import (
        ApiSettings,
        KafkaSettings,
        MonitorSettings,
        ScorerSettings,
        StackSettings,
    )

    stack = StackSettings.model_fields
    return {
        "kafka": int(KafkaSettings.model_fields["kafka_bootstrap"].default.rsplit(":", 1)[1]),
        "mlflow": int(stack["mlflow_port"].default),
        "api": int(ApiSettings.model_fields["api_port"].default),
        "scorer": int(ScorerSettings.model_fields["scorer_metrics_port"].default),
        "monitor": int(MonitorSettings.model_fields["monitor_metrics_port"].default),
        "prometheus": int(stack["prometheus_port"].default),
        "grafana": GRAFANA_PORT,
    }


def design_ports() -> dict[str, int]:
    """Service -> port, from DESIGN.md's "Ports: Kafka 9092, MLflow 5000, ..." sentence; the
    settings' defaults when DESIGN.md is not beside the repository (a clone on its own), which
    test_design_ports_are_the_settings_defaults keeps equal to it."""
    if not DESIGN_FILE.is_file():
        return settings_ports()
    text = " ".join(DESIGN_FILE.read_text().split())
    found = re.search(r"\bPorts: (.+?)\. ", text)
    assert found, "DESIGN.md has no 'Ports: ...' sentence"
    ports: dict[str, int] = {}
    for item in found.group(1).split(","):
        name, port = item.strip().rsplit(" ", 1)
        ports[DESIGN_NAMES[name]] = int(port)
    return ports


def test_design_ports_are_the_settings_defaults() -> None:
    if not DESIGN_FILE.is_file():
        pytest.skip(f"{DESIGN_FILE} is not beside the repository")
    assert design_ports() == settings_ports()


def url_ports(text: str) -> set[int]:
    return {int(port) for port in re.findall(r"http://127\.0\.0\.1:(\d+)/", text)}


def prometheus_config(name: str) -> Json:
    loaded: Json = yaml.safe_load((PROMETHEUS_DIR / name).read_text())
    return loaded


def compose_jobs() -> dict[str, Json]:
    return {job["job_name"]: job for job in prometheus_config("compose.yml")["scrape_configs"]}


def job_targets(job: Json) -> list[str]:
    """host:port of a job's static targets and DNS names."""
    static = [target for group in job.get("static_configs", []) for target in group["targets"]]
    dns = [f"{name}:{sd['port']}" for sd in job.get("dns_sd_configs", []) for name in sd["names"]]
    return static + dns


def dvc_stages() -> dict[str, Json]:
    stages: dict[str, Json] = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]
    return stages


def stage_paths(stage: Json, key: str) -> set[str]:
    """A stage's deps, outs or metrics, as paths (an entry with options is a one-key mapping)."""
    return {next(iter(item)) if isinstance(item, dict) else item for item in stage.get(key, [])}


def stage_outs(name: str) -> set[str]:
    return stage_paths(dvc_stages()[name], "outs")


def dockerfile_instructions(keyword: str) -> list[str]:
    """The arguments of each `keyword` instruction, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    return [
        line.split(None, 1)[1].strip()
        for line in text.splitlines()
        if line.split(None, 1)[:1] == [keyword]
    ]


# -- the loader itself ---------------------------------------------------------------------


def test_the_loader_accepts_the_file_and_normalises_it(model: Json) -> None:
    assert model["name"] == "fraud-detection"
    assert set(model["services"]) == SERVICES
    for name, service in model["services"].items():
        # Normalised: short syntax expanded into the long form, relative paths made absolute.
        for dependency in (service.get("depends_on") or {}).values():
            assert set(dependency) >= {"condition", "required"}, name
        for port in service.get("ports") or []:
            assert {"published", "target", "protocol"} <= set(port), name
        for source in bind_mounts(service).values():
            assert source.is_absolute(), name


def _misspell_healthcheck(doc: Json) -> None:
    doc["services"]["grafana"]["helthcheck"] = doc["services"]["grafana"].pop("healthcheck")


def _unknown_condition(doc: Json) -> None:
    doc["services"]["scorer"]["depends_on"]["kafka-init"]["condition"] = "service_ready"


def _undefined_service(doc: Json) -> None:
    doc["services"]["api"]["depends_on"]["kafak"] = {"condition": "service_healthy"}


def _undefined_volume(doc: Json) -> None:
    doc["services"]["replay"]["volumes"] = ["dta:/app/data:ro"]


@pytest.mark.parametrize(
    ("break_it", "message"),
    [
        (_unknown_condition, "condition value must be one of"),
        (_misspell_healthcheck, "helthcheck"),
        (_undefined_service, 'depends on undefined service "kafak"'),
        (_undefined_volume, "undefined volume dta"),
    ],
    ids=["unknown depends_on condition", "unknown key", "undefined service", "undefined volume"],
)
def test_the_loader_rejects_a_broken_variant(
    tmp_path: Path, break_it: Callable[[Json], None], message: str
) -> None:
    """The loader really validates: the file as YAML round-trips and loads, and one change to it
    (what a typo does) is refused with the loader's own message."""
    original: Json = yaml.safe_load(COMPOSE_FILE.read_text())
    intact = tmp_path / "intact" / "docker-compose.yml"
    broken = tmp_path / "broken" / "docker-compose.yml"
    for path, doc in ((intact, original), (broken, copy.deepcopy(original))):
        if path == broken:
            break_it(doc)
        path.parent.mkdir()
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert load_compose(intact).returncode == 0
    refused = load_compose(broken)
    assert refused.returncode == 1
    assert message in refused.stderr


# -- what the services run -----------------------------------------------------------------


def test_every_command_a_service_runs_exists_and_parses(ours: dict[str, Json]) -> None:
    """`fraud`, `mlflow` and `dvc` command lines are parsed by those CLIs themselves (so an
    option that does not exist fails here), `python -m` modules must import, and the tools that
    shell scripts call must exist."""
    fraud = fraud_commands()
    for name, service in ours.items():
        script = shell_script(service)
        if script is None:
            words = argv(service)
            tool = words[0]
            assert entry_points(group="console_scripts", name=tool), f"{name}: no {tool} command"
            if tool == "fraud":
                parse(fraud, words[1:])
            elif tool == "mlflow":
                parse(mlflow_commands(), words[1:])
            elif tool == "dvc":
                check_dvc(words[1:])
            else:
                pytest.fail(f"{name} runs {tool}, which this test does not know")
            continue
        calls = re.findall(r"(?<![\w/-])(fraud|dvc)\s+([a-z][\w-]*)", script)
        assert calls, f"{name}'s script runs no project command"
        for tool, subcommand in calls:
            assert entry_points(group="console_scripts", name=tool), f"{name}: no {tool} command"
            if tool == "fraud":
                assert subcommand in fraud, f"{name}: no `fraud {subcommand}`"
            else:
                check_dvc([subcommand])
        for module in re.findall(r"python -m ([\w.]+)", script):
            assert importlib.util.find_spec(module), f"{name}: no module {module}"
        for code in re.findall(r"python -c '([^']*)'", script):
            compile(code, f"{name}'s python -c", "exec")


def test_healthchecks_are_valid_commands(services: dict[str, Json]) -> None:
    for name, service in services.items():
        check = (service.get("healthcheck") or {}).get("test") or []
        if check[:3] == ["CMD", "python", "-c"]:
            compile(check[3], f"{name}'s healthcheck", "exec")


def test_every_variable_a_service_sets_is_read_by_the_settings(
    ours: dict[str, Json], monkeypatch: pytest.MonkeyPatch, no_settings_env: None
) -> None:
    """Names from the settings classes themselves (a misspelt or removed setting would be
    silently ignored by the process), and values that every settings class accepts."""
    known = variables_read() | set(MLFLOW_CLIENT_DEFAULTS) | set(LOGIN_VARIABLES)
    for name, service in ours.items():
        env = environment(service)
        unknown = {variable for variable in env if variable not in known}
        assert not unknown, f"{name} sets variables no settings class reads: {sorted(unknown)}"
        with monkeypatch.context() as patch:
            for variable, value in env.items():
                patch.setenv(variable, value)
            for cls in settings_classes():
                cls()  # raises ValidationError on a value the process would refuse


def test_services_listen_where_healthchecks_and_prometheus_look(
    services: dict[str, Json], monkeypatch: pytest.MonkeyPatch, no_settings_env: None
) -> None:
    jobs = compose_jobs()
    for name, (cls, host_field, port_field, job_name) in LISTENERS.items():
        service = services[name]
        with monkeypatch.context() as patch:
            for variable, value in environment(service).items():
                patch.setenv(variable, value)
            listening = cls()
        port = getattr(listening, port_field)
        # 127.0.0.1, the default, would be out of reach of Prometheus and of published ports.
        assert getattr(listening, host_field) == "0.0.0.0", name
        assert url_ports(" ".join(service["healthcheck"]["test"])) == {port}, name
        assert job_targets(jobs[job_name]) == [f"{name}:{port}"], job_name


def test_every_bind_mounted_path_exists_in_the_repository(services: dict[str, Json]) -> None:
    for name, service in services.items():
        for target, source in bind_mounts(service).items():
            assert source.exists(), f"{name} mounts {source} at {target}: it does not exist"
            assert source.is_relative_to(REPO_ROOT), f"{name} mounts {source} from outside"


# -- ports, images, start order ------------------------------------------------------------


def test_published_ports_are_designs_on_loopback_only(services: dict[str, Json]) -> None:
    ports = design_ports()
    publishing = {name for name, service in services.items() if service.get("ports")}
    assert publishing == PUBLISHED
    for name in publishing:
        (port,) = services[name]["ports"]
        assert port["host_ip"] == "127.0.0.1", f"{name} is published beyond this machine"
        assert int(port["published"]) == ports[name], name
        if name != "kafka":  # its host listener has a container port of its own (test_kafka_*)
            assert port["target"] == ports[name], name


def test_the_scorer_scales(services: dict[str, Json]) -> None:
    """`--scale scorer=N` needs no fixed host port and no fixed container name; its metrics port
    is only exposed inside the network, where Prometheus finds every replica."""
    scorer = services["scorer"]
    assert not scorer.get("ports")
    assert "container_name" not in scorer
    assert [int(p) for p in scorer.get("expose", [])] == [design_ports()["scorer"]]
    (discovery,) = compose_jobs()["fraud-scorer"]["dns_sd_configs"]
    assert discovery["type"] == "A", "one target per replica needs the A records"


def test_images_are_pinned(services: dict[str, Json]) -> None:
    for name, service in services.items():
        repository, _, tag = service["image"].rpartition(":")
        assert repository and tag != "latest", f"{name}: {service['image']}"
        if "build" not in service:  # pulled: a version tag, so every pull gets the same image
            assert PINNED_TAG.match(tag), f"{name}: {service['image']} is not a version"


def test_services_wait_on_health(services: dict[str, Json]) -> None:
    for name, service in services.items():
        long_running = service.get("restart") != "no"
        if long_running:
            assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        for target, dependency in (service.get("depends_on") or {}).items():
            condition = dependency["condition"]
            assert condition in WAIT_CONDITIONS, f"{name} waits on {target} only to start"
            if condition == "service_healthy":
                assert services[target].get("healthcheck", {}).get("test"), target
            else:  # a one-shot: restarting it would never let it complete
                assert services[target].get("restart") == "no", target


# -- the components ------------------------------------------------------------------------


def test_kafka_is_the_native_broker_in_a_container(
    services: dict[str, Json], ours: dict[str, Json], no_settings_env: None
) -> None:
    kafka = environment(services["kafka"])
    native = KafkaSettings()
    # Single node: the internal topics' settings of `fraud kafka start`, transactions included.
    properties = dict(
        line.split("=", 1)
        for line in render_server_properties(native, BrokerSettings()).splitlines()
        if "=" in line and not line.startswith("#")
    )
    mirrored = {k: v for k, v in properties.items() if SINGLE_NODE_PROPERTIES.search(k)}
    assert "transaction.state.log.replication.factor" in mirrored
    for key, value in mirrored.items():
        assert kafka.get("KAFKA_" + key.upper().replace(".", "_")) == value, key
    # The topics of KafkaSettings, as `fraud kafka start` creates them.
    init = environment(services["kafka-init"])
    assert init["TOPICS"].split() == list(native.topics)
    assert int(init["PARTITIONS"]) == native.topic_partitions
    # Containers use the inter-broker listener; the host's default bootstrap reaches the other.
    advertised = dict(item.split("://") for item in kafka["KAFKA_ADVERTISED_LISTENERS"].split(","))
    inside = advertised[kafka["KAFKA_INTER_BROKER_LISTENER_NAME"]]
    (host_port,) = services["kafka"]["ports"]
    (host_name,) = {listener for listener, address in advertised.items() if address != inside}
    assert advertised[host_name] == native.kafka_bootstrap == f"127.0.0.1:{host_port['published']}"
    assert f"{host_name}://:{host_port['target']}" in kafka["KAFKA_LISTENERS"].split(",")
    for name, service in ours.items():
        bootstrap = environment(service).get("FRAUD_KAFKA_BOOTSTRAP")
        if bootstrap is not None:
            assert bootstrap == inside, name
            assert service["depends_on"]["kafka-init"]["condition"] == (
                "service_completed_successfully"
            ), f"{name} must wait for the topics"
    for name in ("kafka", "kafka-init"):  # the image's own tools, in the healthcheck and init
        text = " ".join(
            [*argv(services[name]), *services[name].get("healthcheck", {}).get("test", [])]
        )
        assert set(re.findall(r"--bootstrap-server (\S+)", text)) == {inside}, name


def test_mlflow_serves_runs_and_artifacts_to_the_containers(
    services: dict[str, Json], ours: dict[str, Json]
) -> None:
    mlflow = services["mlflow"]
    words = argv(mlflow)
    assert words[:2] == ["fraud", "mlflow"], "`fraud mlflow` sets up the logins"
    options = parse(fraud_commands(), words[1:]).params
    assert options["backend_store_uri"].startswith("postgresql+psycopg2://")
    assert urlsplit(options["backend_store_uri"]).hostname == "postgres"
    assert mlflow["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert importlib.util.find_spec("psycopg2"), "the lock must bring PostgreSQL's driver"
    # Artifacts on a named volume, served by the server (MLflow's default), so clients mount
    # nothing.
    assert options["artifacts_destination"] in named_volumes(mlflow)
    assert options["host"] == "0.0.0.0"
    allowed = set(options["allowed_hosts"].split(","))
    (published,) = mlflow["ports"]
    assert {f"127.0.0.1:{published['published']}", f"localhost:{published['published']}"} <= allowed
    assert url_ports(" ".join(mlflow["healthcheck"]["test"])) == {int(options["port"])}
    clients = {
        name: environment(service)["MLFLOW_TRACKING_URI"]
        for name, service in ours.items()
        if "MLFLOW_TRACKING_URI" in environment(service)
    }
    assert set(clients) == {"trainer", "scorer", "api", "monitor"}
    for name, uri in clients.items():
        # MLflow refuses a Host header that --allowed-hosts does not list.
        assert urlsplit(uri).netloc == f"mlflow:{options['port']}", name
        assert urlsplit(uri).netloc in allowed, name
        assert ours[name]["depends_on"]["mlflow"]["condition"] == "service_healthy", name


def test_the_registry_asks_for_logins_and_each_client_has_its_own(
    services: dict[str, Json],
    ours: dict[str, Json],
    monkeypatch: pytest.MonkeyPatch,
    no_settings_env: None,
) -> None:
    """The registry leaves loopback inside the compose network, so `fraud mlflow` runs MLflow's
    basic-auth app: the pipeline (and `fraud promote`) log in as the editor, serving as the
    reader; the healthcheck asks a route that needs no login."""
    from mlflow.server.auth import is_unprotected_route

    mlflow = services["mlflow"]
    with monkeypatch.context() as patch:
        for variable, value in environment(mlflow).items():
            patch.setenv(variable, value)
        auth = RegistryAuthSettings()
    assert auth.mlflow_auth
    assert auth.mlflow_editor_password is not None and auth.mlflow_reader_password is not None
    # The passwords are the user's (.env), not written in the file.
    passwords = {
        "FRAUD_MLFLOW_EDITOR_PASSWORD": auth.mlflow_editor_password.get_secret_value(),
        "FRAUD_MLFLOW_READER_PASSWORD": auth.mlflow_reader_password.get_secret_value(),
    }
    assert passwords == REQUIRED_VARIABLES
    # The users outlive the container: their database is on a named volume of its own.
    assert auth.mlflow_auth_database_uri.startswith("sqlite:////")
    folder = str(PurePosixPath(auth.mlflow_auth_database_uri.removeprefix("sqlite:///")).parent)
    assert folder in named_volumes(mlflow)
    others = [named_volumes(service) for name, service in services.items() if name != "mlflow"]
    assert not any(folder in mounts for mounts in others)
    check = " ".join(mlflow["healthcheck"]["test"])
    (health_path,) = re.findall(r"http://127\.0\.0\.1:\d+(/[\w/-]*)", check)
    assert is_unprotected_route(health_path), f"{health_path} would answer 401"
    editor = (auth.mlflow_editor_username, auth.mlflow_editor_password.get_secret_value())
    reader = (auth.mlflow_reader_username, auth.mlflow_reader_password.get_secret_value())
    logins = {
        name: tuple(environment(service).get(variable) for variable in LOGIN_VARIABLES)
        for name, service in ours.items()
        if "MLFLOW_TRACKING_URI" in environment(service)
    }
    assert logins == {"trainer": editor, "scorer": reader, "api": reader, "monitor": reader}


def test_the_file_does_not_load_without_the_registry_passwords(tmp_path: Path) -> None:
    copy = tmp_path / COMPOSE_FILE.name  # away from a .env a user may keep beside the file
    shutil.copy(COMPOSE_FILE, copy)
    for missing in REQUIRED_VARIABLES:
        given = {name: value for name, value in REQUIRED_VARIABLES.items() if name != missing}
        refused = load_compose(copy, given)
        assert refused.returncode == 1, missing
        assert missing in refused.stderr and "set it in .env" in refused.stderr, refused.stderr


def test_the_trainer_feeds_serving_and_replay(ours: dict[str, Json]) -> None:
    trainer = ours["trainer"]
    script = shell_script(trainer)
    assert script is not None
    # The pipeline, then the first version into production when none is (never moving one a
    # person set).
    assert script.splitlines() == ["dvc repro", "fraud promote --if-unset"]
    # Serving waits for it, and replay reads the test split from the volume it writes.
    for name in ("scorer", "api", "monitor", "replay"):
        assert ours[name]["depends_on"]["trainer"]["condition"] == "service_completed_successfully"
    workdir = PurePosixPath(dockerfile_instructions("WORKDIR")[-1])
    (data,) = [t for t in named_volumes(trainer) if t == str(workdir / TEST_SPLIT_FILE.parts[0])]
    replay = ours["replay"]
    assert named_volumes(replay)[data]["source"] == named_volumes(trainer)[data]["source"]
    assert named_volumes(replay)[data].get("read_only")
    words = argv(replay)
    assert words[:2] == ["fraud", "replay"]
    source = parse(fraud_commands(), words[1:]).params["source"]
    assert source == TEST_SPLIT_FILE, "replay's source is the test split under the data volume"


def test_prometheus_runs_the_compose_config_with_the_repos_rules(
    services: dict[str, Json],
) -> None:
    prometheus = services["prometheus"]
    config_path = next(
        PurePosixPath(word.split("=", 1)[1])
        for word in prometheus["command"]
        if word.startswith("--config.file=")
    )
    mounts = bind_mounts(prometheus)
    assert mounts[str(config_path)] == PROMETHEUS_DIR / "compose.yml"
    compose, native = prometheus_config("compose.yml"), prometheus_config("prometheus.yml")
    # The same jobs, intervals and rules as the native configuration; only discovery differs.
    assert compose["global"] == native["global"]
    assert compose["rule_files"] == native["rule_files"]
    assert [j["job_name"] for j in compose["scrape_configs"]] == [
        j["job_name"] for j in native["scrape_configs"]
    ]
    for pattern in compose["rule_files"]:
        folder = PurePosixPath(pattern).parent
        assert mounts[str(config_path.parent / folder)] == PROMETHEUS_DIR / folder
        assert list((PROMETHEUS_DIR / folder).glob(PurePosixPath(pattern).name))


def test_the_compose_prometheus_config_is_valid() -> None:
    binary = shutil.which("promtool")
    assert binary, "promtool is missing: `make system-deps` installs Debian's prometheus package"
    result = subprocess.run(
        [binary, "check", "config", "compose.yml"],
        cwd=PROMETHEUS_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_grafana_is_provisioned_from_the_repository(services: dict[str, Json]) -> None:
    grafana = services["grafana"]
    mounts = bind_mounts(grafana)
    provisioning = GRAFANA_DIR / "provisioning"
    assert mounts["/etc/grafana/provisioning"] == provisioning
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "dashboards.yml").read_text())[
        "providers"
    ]
    dashboards_path = provider["options"]["path"]
    assert mounts[dashboards_path] == GRAFANA_DIR / "dashboards"
    home = PurePosixPath(environment(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert home.parent == PurePosixPath(dashboards_path)
    assert (GRAFANA_DIR / "dashboards" / home.name).is_file()
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    (prometheus_port,) = services["prometheus"]["ports"]
    assert urlsplit(source["url"]).netloc == f"prometheus:{prometheus_port['target']}"
    assert grafana["depends_on"]["prometheus"]["condition"] == "service_healthy"


# -- the image -----------------------------------------------------------------------------


def test_dockerfile_builds_from_the_lock_on_a_pinned_base() -> None:
    (base,) = dockerfile_instructions("FROM")
    assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+", base), base
    makefile_uv = re.search(r"^UV_VERSION := (\S+)$", (REPO_ROOT / "Makefile").read_text(), re.M)
    assert makefile_uv
    assert f"UV_VERSION={makefile_uv.group(1)}" in dockerfile_instructions("ARG")
    runs = dockerfile_instructions("RUN")
    assert any(
        "uv pip sync" in run and "--require-hashes" in run and "requirements.lock" in run
        for run in runs
    )
    assert any("uv pip install" in run and "--no-deps" in run for run in runs)
    assert any("no_scm = true" in run for run in runs), "DVC needs core.no_scm without git"
    (user,) = dockerfile_instructions("USER")
    assert user not in {"root", "0"}
    assert dockerfile_instructions("WORKDIR") == ["/app"]
    # The services' commands are whole command lines (see argv).
    assert not dockerfile_instructions("ENTRYPOINT")


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Whether Docker leaves `path` out of the build context (patterns without exceptions)."""
    parts = PurePosixPath(path).parts
    # A pattern names a path from the context's root, and excludes everything under it too;
    # `**/name` names it in any folder.
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        anywhere = pattern.startswith("**/")
        candidates = parts if anywhere else prefixes
        if any(fnmatch.fnmatchcase(c, pattern.removeprefix("**/")) for c in candidates):
            return True
    return False


def dockerignore_patterns() -> Iterator[str]:
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            assert not line.startswith("!"), "exceptions are not modelled by dockerignored()"
            yield line.rstrip("/")


def test_dockerignore_keeps_local_state_out_and_the_build_inputs_in() -> None:
    patterns = list(dockerignore_patterns())
    for local in (".git", ".venv", ".tools", ".run", "mlflow.db", "mlflow-auth.db", ".env",
                  "mlruns", "data/raw/x.csv", ".dvc/cache", "reports/registered.json",
                  "cli/__pycache__/app.pyc"):  # fmt: skip
        assert dockerignored(local, patterns), local
    needed = ["requirements.lock", "pyproject.toml", "README.md", "dvc.yaml", "dvc.lock",
              "params.yaml", ".dvc/config", ".dvcignore"]  # fmt: skip
    needed += [f"{package}/__init__.py" for package in ("fraud", "infra", "pipelines", "serving",
                                                        "monitoring", "cli")]  # fmt: skip
    for path in needed:
        assert (REPO_ROOT / path).is_file(), path
        assert not dockerignored(path, patterns), path
    # The trainer runs `dvc repro` in the image: every input of a stage that no stage produces
    # must be in it.
    stages = dvc_stages().values()
    produced = set().union(*(stage_paths(s, "outs") | stage_paths(s, "metrics") for s in stages))
    for stage in stages:
        for dep in stage_paths(stage, "deps") - produced:
            assert not dockerignored(dep, patterns), f"{dep} is a pipeline input"
