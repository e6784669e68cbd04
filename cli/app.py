"""`fraud`: the one command line in front of every user action."""

from __future__ import annotations

import datetime as dt
import json
import logging
import logging.config
import os
import secrets
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from cli.compare import compare
from cli.drift import CurrentFile, ReferenceFolder, ReportFile, run_drift
from cli.environment import run_with_environment
from cli.errors import err_console, fail, invalid_settings
from cli.kafka import kafka_app
from cli.stack import down, stack_part, status, up
from infra.paths import TEST_SPLIT_FILE, project_root
from infra.registry import RegistryError, VersionSummary, list_versions, set_alias
from infra.registry_auth import (
    RegistryAuthError,
    ensure_accounts,
    is_loopback,
    shown_uri,
    write_auth_config,
)
from infra.settings import (
    CHALLENGER_ALIAS,
    MLFLOW_CLIENT_DEFAULTS,
    PRODUCTION_ALIAS,
    ApiSettings,
    KafkaSettings,
    ModelSettings,
    MonitorSettings,
    RegistryAuthSettings,
    ScorerSettings,
    StackSettings,
    TrackingSettings,
)

app = typer.Typer(
    help="Real-time credit-card fraud detection: registry, serving and operations.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(kafka_app, name="kafka")
for command in (up, down, status):
    app.command()(command)
app.command("stack-part", hidden=True)(stack_part)
app.command("compare")(compare)
console = Console(soft_wrap=True)

ModelName = Annotated[
    str | None,
    typer.Option(
        "--model", help="Registered model name (default: FRAUD_MODEL_NAME, else fraud-detector)."
    ),
]


def _short(value: str | None) -> str:
    try:
        return f"{float(value):.4f}" if value is not None else "-"
    except ValueError:
        return value or "-"


@app.command()
def models(model: ModelName = None) -> None:
    """List the registered model's versions with their aliases, key metrics and threshold."""
    run_with_environment(MLFLOW_CLIENT_DEFAULTS)  # a registry that does not answer: say so
    name = model or ModelSettings().model_name
    try:
        versions = list_versions(name)
    except RegistryError as exc:
        raise fail(str(exc)) from None
    table = Table(title=f"{name} in {TrackingSettings().tracking_uri}")
    for column in (
        "ver",
        "aliases",
        "registered (UTC)",
        "AUPRC",
        "ROC-AUC",
        "R@P90",
        "threshold",
        "gates",
    ):
        table.add_column(column, no_wrap=True)
    for v in versions:
        registered = dt.datetime.fromtimestamp(v.created_ms / 1000, tz=dt.UTC)
        table.add_row(
            str(v.version),
            ", ".join(v.aliases) or "-",
            registered.strftime("%Y-%m-%d %H:%M"),
            *(
                _short(v.tags.get(key))
                for key in ("auprc", "roc_auc", "recall_at_p90", "threshold")
            ),
            v.tags.get("quality_gates", "-"),
        )
    # Not a terminal (a pipe, CI logs): rich would squeeze the table into 80 columns.
    Console(soft_wrap=True, width=max(console.width, 110)).print(table)


@app.command()
def promote(
    version: Annotated[
        int | None,
        typer.Option(
            "--version",
            "-v",
            help="Model version to point the alias at (default: the challenger's version).",
            min=1,
        ),
    ] = None,
    alias: Annotated[str, typer.Option("--alias", "-a", help="Alias to move.")] = PRODUCTION_ALIAS,
    if_unset: Annotated[
        bool,
        typer.Option(
            "--if-unset", help="Only when the alias points at no version yet (first deployment)."
        ),
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Move the alias even when the version fails serving's checks."
        ),
    ] = False,
    model: ModelName = None,
) -> None:
    """Point an alias (default: production) at a registered version, as the MLflow UI does,
    once the version passes the checks the scorer and the API run when they load it."""
    run_with_environment(MLFLOW_CLIENT_DEFAULTS)  # a registry that does not answer: say so
    name = model or ModelSettings().model_name
    try:
        versions = list_versions(name)
        current = next((v.version for v in versions if alias in v.aliases), None)
        if if_unset and current is not None:
            console.print(f"{name}@{alias} is version {current} already; left as it is.")
            return
        if version is None:
            version = next((v.version for v in versions if CHALLENGER_ALIAS in v.aliases), None)
            if version is None:
                raise fail(
                    f"no version of {name} is the {CHALLENGER_ALIAS} (the pipeline sets that "
                    "alias on a version passing its quality gates); name one with --version."
                )
        target = next((v for v in versions if v.version == version), None)
        problem = None if force or target is None else _serving_problem(name, target, alias)
        if problem is not None:
            raise fail(
                f"version {version} of {name} cannot be served ({problem}): the scorer and the "
                f"API would refuse it, so {alias} stays where it is. Fix the version, or move "
                "the alias anyway with --force."
            )
        move = set_alias(name, version, alias)
    except RegistryError as exc:
        raise fail(str(exc)) from None
    if move.target.tags.get("quality_gates") == "failed":
        err_console.print(
            f"[yellow]warning:[/] version {version} failed the pipeline's quality gates "
            "(see `fraud models`); promoted as asked.",
            highlight=False,
        )
    was = f" (was version {move.previous})" if move.previous is not None else " (was unset)"
    console.print(f"{name}@{alias} -> version {version}{was}")


def _serving_problem(name: str, target: VersionSummary, alias: str) -> str | None:
    """Why serving would refuse this version (the model holder's own checks), or None."""
    from mlflow import MlflowClient

    from infra.tracking import configure_mlflow
    from serving.model_holder import ModelLoadError, load_version

    configure_mlflow()
    try:
        load_version(MlflowClient(), name, str(target.version), alias, target.tags)
    except ModelLoadError as exc:
        return str(exc)
    except Exception as exc:  # a broken booster file, an artifact that cannot be downloaded
        first = str(exc).strip().splitlines()
        return f"it does not load: {first[0] if first else type(exc).__name__}"
    return None


@app.command("mlflow")
def mlflow_server(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 5000,
    workers: Annotated[int, typer.Option(help="Web workers; one serves a person's UI.", min=1)] = 1,
    backend_store_uri: Annotated[
        str | None,
        typer.Option(help="The store to serve (default: MLFLOW_TRACKING_URI, else mlflow.db)."),
    ] = None,
    artifacts_destination: Annotated[
        str | None,
        typer.Option(help="Where the server keeps the artifacts it serves (MLflow's default)."),
    ] = None,
    allowed_hosts: Annotated[
        str | None,
        typer.Option(help="Host headers to accept, comma-separated (MLflow's default)."),
    ] = None,
) -> None:
    """Start the MLflow tracking server and UI over the project's store (MLFLOW_TRACKING_URI);
    with FRAUD_MLFLOW_AUTH, behind MLflow's basic-auth app (an editor and a reader login)."""
    store = backend_store_uri or TrackingSettings().tracking_uri
    if store.startswith(("http://", "https://")):
        given = "--backend-store-uri" if backend_store_uri else "MLFLOW_TRACKING_URI"
        raise fail(
            f"{given} is {store}, already a server; "
            "point it at a database (e.g. sqlite:///mlflow.db) to serve that store."
        )
    try:
        auth = RegistryAuthSettings()
    except ValidationError as exc:
        raise invalid_settings(exc) from None
    if not auth.mlflow_auth and not is_loopback(host):
        raise fail(
            f"--host {host} opens the registry beyond this machine, where anyone could move "
            "its aliases: set FRAUD_MLFLOW_AUTH=true with the editor's and the reader's "
            "credentials (README, Authenticated registry), or listen on 127.0.0.1."
        )
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", store, "--host", host, "--port", str(port),
        "--workers", str(workers),
    ]  # fmt: skip
    for option, value in (
        ("--artifacts-destination", artifacts_destination),
        ("--allowed-hosts", allowed_hosts),
    ):
        if value is not None:
            command += [option, value]
    # MLflow 3 also starts a job runner with seven worker processes for its GenAI features,
    # which this project does not use: off unless the environment asks for it.
    environment = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **os.environ}
    logins = ""
    if auth.mlflow_auth:
        command += ["--app-name", "basic-auth"]
        # MLflow's own admin variables would override the configuration written here.
        for name in ("MLFLOW_AUTH_ADMIN_USERNAME", "MLFLOW_AUTH_ADMIN_PASSWORD"):
            environment.pop(name, None)
        environment.update(_registry_auth_environment(auth, port))
        logins = (
            f", logins required (editor {auth.mlflow_editor_username!r}, "
            f"reader {auth.mlflow_reader_username!r})"
        )
    err_console.print(f"MLflow UI on http://{host}:{port} over {shown_uri(store)}{logins}")
    sys.stdout.flush()
    os.execve(sys.executable, command, environment)


def _registry_auth_environment(auth: RegistryAuthSettings, port: int) -> dict[str, str]:
    """Prepare MLflow's basic-auth app: its configuration file in the run directory (one per
    port, as servers may run side by side) and both accounts in its user store. Returns the
    variables the server needs."""
    try:
        run_dir = StackSettings().run_dir
    except ValidationError as exc:
        raise invalid_settings(exc) from None
    try:
        config = write_auth_config(auth, run_dir / f"mlflow-auth-{port}.ini")
        for change in ensure_accounts(auth):
            err_console.print(f"MLflow logins: {change}", highlight=False)
    except (RegistryAuthError, OSError) as exc:
        raise fail(str(exc)) from None
    return {
        "MLFLOW_AUTH_CONFIG_PATH": str(config),
        # The CSRF key of the app's sign-up form, shared by the server's workers.
        "MLFLOW_FLASK_SERVER_SECRET_KEY": os.environ.get("MLFLOW_FLASK_SERVER_SECRET_KEY")
        or secrets.token_urlsafe(32),
    }


def _given(**options: Any) -> dict[str, Any]:
    """The options given on the command line; the rest come from the environment or defaults."""
    return {name: value for name, value in options.items() if value is not None}


def _kafka_settings() -> KafkaSettings:
    try:
        return KafkaSettings()
    except ValidationError as exc:
        raise invalid_settings(exc) from None


def _log_config() -> dict[str, Any]:
    """Timestamped lines on stderr; the chatty client libraries only from WARNING up, and
    the Kafka clients no higher than that (infra.log_filters)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
        "filters": {"kafka_noise": {"()": "infra.log_filters.KafkaNoise"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "plain",
                "stream": "ext://sys.stderr",
                "filters": ["kafka_noise"],
            }
        },
        "root": {"level": "INFO", "handlers": ["stderr"]},
        "loggers": {
            name: {"level": "WARNING"} for name in ("kafka", "mlflow", "urllib3", "alembic")
        },
    }


def _log_to_stderr() -> None:
    logging.config.dictConfig(_log_config())


@app.command()
def score(
    exactly_once: Annotated[
        bool,
        typer.Option(
            "--exactly-once",
            help="Transactional producer with the input offsets in each transaction; read "
            "predictions with isolation read_committed.",
        ),
    ] = False,
    group: Annotated[
        str | None, typer.Option(help="Consumer group (FRAUD_SCORER_GROUP_ID).")
    ] = None,
    instance: Annotated[
        str | None,
        typer.Option(help="This process's id within the group (FRAUD_SCORER_INSTANCE)."),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Port of /metrics and /ready; 0 picks a free one (default 8001)."),
    ] = None,
    max_batch: Annotated[
        int | None, typer.Option(help="Most messages per micro-batch (default 2000).")
    ] = None,
    shadow: Annotated[
        bool,
        typer.Option(
            "--shadow",
            help="Also score each batch with the challenger version, when it differs from "
            "production's, into the shadow predictions topic (FRAUD_SCORER_SHADOW).",
        ),
    ] = False,
) -> None:
    """Score the transactions topic with the production model until SIGTERM/SIGINT."""
    from infra.metrics_server import MetricsPortError
    from serving.stream import serve

    try:
        settings = ScorerSettings(
            **_given(
                scorer_exactly_once=exactly_once or None,
                scorer_group_id=group,
                scorer_instance=instance,
                scorer_metrics_port=metrics_port,
                scorer_max_batch=max_batch,
                scorer_shadow=shadow or None,
            )
        )
        holder_settings = ModelSettings()
    except ValidationError as exc:
        raise invalid_settings(exc) from None
    run_with_environment(MLFLOW_CLIENT_DEFAULTS)
    _log_to_stderr()
    try:
        code = serve(settings, holder_settings)
    except MetricsPortError as exc:
        raise fail(str(exc)) from None
    # Everything is committed or said by now. After a stop with the broker gone, librdkafka's
    # clients (a consumer still leaving its group, a producer with unsent records) held the
    # interpreter's exit for up to 3.4 s past FRAUD_SCORER_SHUTDOWN_SECONDS: end without
    # tearing them down.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@app.command()
def drift(
    current: CurrentFile, reference: ReferenceFolder = None, report: ReportFile = None
) -> None:
    """Run the drift monitor's computation once on a file: print the summary, write the report."""
    run_with_environment(MLFLOW_CLIENT_DEFAULTS)
    run_drift(current, reference, report)


@app.command()
def monitor(
    group: Annotated[
        str | None, typer.Option(help="Consumer group (FRAUD_MONITOR_GROUP_ID, fraud-monitor).")
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            help="Port of /metrics, /ready, /report and /v1/drift; 0 picks a free one "
            "(FRAUD_MONITOR_METRICS_PORT, 8002)."
        ),
    ] = None,
    window_size: Annotated[
        int | None,
        typer.Option(
            help="Transactions per window (FRAUD_MONITOR_WINDOW_SIZE; default: the size the "
            "baseline was calibrated for, the only one its thresholds hold for)."
        ),
    ] = None,
    run_every: Annotated[
        int | None,
        typer.Option(
            help="New transactions between drift runs (FRAUD_MONITOR_RUN_EVERY; default: the "
            "baseline's)."
        ),
    ] = None,
    run_seconds: Annotated[
        float | None,
        typer.Option(
            help="Seconds after which a run happens anyway when rows arrived "
            "(FRAUD_MONITOR_RUN_SECONDS, 30)."
        ),
    ] = None,
) -> None:
    """Watch transactions and predictions for drift against the production version's baseline
    until SIGTERM/SIGINT: gauges on /metrics, the latest report on /report and /v1/drift."""
    from infra.metrics_server import MetricsPortError
    from monitoring.monitor import serve

    try:
        settings = MonitorSettings(
            **_given(
                monitor_group_id=group,
                monitor_metrics_port=metrics_port,
                monitor_window_size=window_size,
                monitor_run_every=run_every,
                monitor_run_seconds=run_seconds,
            )
        )
        model_settings = ModelSettings()
    except ValidationError as exc:
        raise invalid_settings(exc) from None
    run_with_environment(MLFLOW_CLIENT_DEFAULTS)
    _log_to_stderr()
    try:
        code = serve(settings, model_settings)
    except MetricsPortError as exc:
        raise fail(str(exc)) from None
    raise typer.Exit(code=code)


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="Interface (FRAUD_API_HOST, 127.0.0.1).")] = None,
    port: Annotated[
        int | None, typer.Option(help="Port (FRAUD_API_PORT, 8000); 0 picks a free one.")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Worker processes sharing the port (FRAUD_API_WORKERS, 1).", min=1),
    ] = None,
    access_log: Annotated[
        bool, typer.Option("--access-log", help="Log every request (method, path, status).")
    ] = False,
) -> None:
    """Serve the REST scoring API (docs at /docs) with the production model until SIGTERM."""
    import uvicorn

    from serving.api import create_app

    try:
        settings = ApiSettings(**_given(api_host=host, api_port=port, api_workers=workers))
        holder_settings = ModelSettings()
    except ValidationError as exc:
        raise invalid_settings(exc) from None
    environment = dict(MLFLOW_CLIENT_DEFAULTS)
    if settings.api_workers > 1 and settings.metrics_multiproc_dir is None:
        environment["PROMETHEUS_MULTIPROC_DIR"] = str(_metrics_dir(settings.api_port))
    run_with_environment(environment)
    _log_to_stderr()
    serve_options: dict[str, Any] = {
        "host": settings.api_host,
        "port": settings.api_port,
        "loop": "uvloop",
        "http": "httptools",
        "access_log": access_log,
        "log_config": _log_config(),
    }
    # uvicorn shuts down cleanly on SIGTERM, then re-raises it to the handler it found: make
    # that one exit 0, as the scorer does, rather than die of the signal (status 143).
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(0))
    if settings.api_workers == 1:
        uvicorn.run(create_app(settings, holder_settings=holder_settings), **serve_options)
        return
    # Workers are fresh processes that build the app from the environment (serving.api:app);
    # they share their metrics through files in one directory, emptied of an earlier run's
    # files first, as prometheus_client requires.
    metrics_dir = settings.metrics_multiproc_dir
    assert metrics_dir is not None  # set above, before the process was started again
    metrics_dir.mkdir(parents=True, exist_ok=True)
    for stale in metrics_dir.glob("*.db"):
        stale.unlink()
    err_console.print(f"{settings.api_workers} workers; metrics shared through {metrics_dir}")
    uvicorn.run("serving.api:app", workers=settings.api_workers, **serve_options)


def _metrics_dir(port: int) -> Path:
    return project_root() / ".run" / "api-metrics" / str(port)


@app.command()
def replay(
    source: Annotated[
        Path,
        typer.Argument(help="CSV or parquet with the dataset's columns (default: the test split)."),
    ] = TEST_SPLIT_FILE,
    rate: Annotated[
        float | None, typer.Option(help="Messages per second (default: as fast as possible).")
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            help="Messages to send, cycling through the rows (default: each row once).", min=1
        ),
    ] = None,
    bad_fraction: Annotated[
        float, typer.Option(help="Share of malformed messages mixed in, for testing.", min=0, max=1)
    ] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed choosing which messages are malformed.")] = 0,
    outcomes: Annotated[
        bool,
        typer.Option(
            "--summary",
            help="Then wait for the scorer's outcome of every message and print what it did "
            "(against the file's Class labels) and the drift monitor's verdict.",
        ),
    ] = False,
    labels_after: Annotated[
        float | None,
        typer.Option(
            "--labels-after",
            metavar="SECONDS",
            help="Also send each row's Class to the labels topic this many seconds after its "
            "transaction, as late chargebacks would come (the monitor's live performance).",
            min=0,
        ),
    ] = None,
) -> None:
    """Send transactions to the transactions topic with stable ids (tx-<file>-<n>)."""
    import time

    from confluent_kafka import KafkaException
    from kafka.errors import KafkaError
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from serving.outcomes import OutcomeReader
    from serving.replay import ReplayError, labels_of, load_rows
    from serving.replay import replay as send_rows

    settings = _kafka_settings()
    _quiet_kafka_client()
    began_at = dt.datetime.now(dt.UTC)
    began = time.monotonic()
    try:
        total = limit or len(load_rows(source))
        labels = labels_of(source, total) if outcomes else {}
        reader = OutcomeReader(settings) if outcomes else None
        with Progress(
            "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
            TimeRemainingColumn(), console=err_console,
        ) as bar:  # fmt: skip
            task = bar.add_task(f"replaying {source.name}", total=total)
            summary = send_rows(
                source, settings=settings, rate=rate, limit=total, bad_fraction=bad_fraction,
                seed=seed, progress=lambda n: bar.advance(task, n), labels_after=labels_after,
            )  # fmt: skip
    except ReplayError as exc:
        raise fail(str(exc)) from None
    except (KafkaError, KafkaException) as exc:  # the outcome reader's, the replay's
        raise _kafka_unreachable(settings, exc) from None
    malformed = sum(summary.malformed.values())
    console.print(
        f"sent {summary.sent} messages to {settings.topic_transactions} in "
        f"{summary.seconds:.1f} s ({summary.sent / max(summary.seconds, 1e-9):,.0f}/s), "
        f"{malformed} malformed"
        + (
            f" ({', '.join(f'{k} {v}' for k, v in sorted(summary.malformed.items()))})"
            if malformed
            else ""
        )
        + (
            f"; {summary.labels} labels to {settings.topic_labels}, {labels_after:g} s after "
            "their transactions"
            if labels_after is not None
            else ""
        )
    )
    if reader is None:
        return
    from cli.outcomes import describe, drift_line

    with Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
        console=err_console,
    ) as bar:  # fmt: skip
        task = bar.add_task("waiting for outcomes", total=total)
        try:
            tally = reader.collect(labels, began, progress=lambda n: bar.advance(task, n))
        except KafkaError as exc:
            raise _kafka_unreachable(settings, exc) from None
    for line in [*describe(tally), drift_line(began_at)]:
        console.print(line, highlight=False)
    if tally.unanswered:
        raise typer.Exit(code=1)


@app.command()
def label(
    transaction_id: Annotated[str, typer.Argument(help="The transaction the label is about.")],
    is_fraud: Annotated[
        bool,
        typer.Option(
            "--fraud/--legit",
            help="Whether it was fraud (a chargeback) or genuine.",
            show_default=False,
        ),
    ],
) -> None:
    """Send one label to the labels topic, as a chargeback system would."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    from fraud.labels import label_message, validate_label
    from fraud.transaction import Rejection

    settings = _kafka_settings()
    _quiet_kafka_client()
    labelled_at = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
    message = label_message(transaction_id, is_fraud, labelled_at)
    checked = validate_label(message)
    if isinstance(checked, Rejection):
        raise fail(f"not a label: {checked.message}.")
    try:
        producer = KafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap, client_id="fraud-label", acks="all",
            bootstrap_timeout_ms=settings.connect_timeout_ms,
        )  # fmt: skip
        try:
            sent = producer.send(
                settings.topic_labels,
                key=transaction_id.encode(),
                value=json.dumps(message).encode(),
            ).get(timeout=settings.kafka_connect_seconds + 10)
        finally:
            producer.close(timeout=5)
    except KafkaError as exc:
        raise _kafka_unreachable(settings, exc) from None
    verdict = "fraud" if is_fraud else "legitimate"
    console.print(
        f"{transaction_id}: {verdict}, sent to {settings.topic_labels}[{sent.partition}]"
        f"@{sent.offset}",
        highlight=False,
    )


@app.command()
def tail(
    topic: Annotated[
        str, typer.Argument(help="Topic to follow, e.g. predictions or transactions.dlq.")
    ],
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning", help="Start at the oldest record.")
    ] = False,
    max_messages: Annotated[
        int | None, typer.Option(help="Stop after this many records.", min=1)
    ] = None,
    idle_timeout: Annotated[
        float | None, typer.Option(help="Stop when nothing arrived for this many seconds.")
    ] = None,
) -> None:
    """Print a topic's records as they arrive (dead letters with their error headers)."""
    from kafka.errors import KafkaError

    from serving.tail import tail as follow_topic

    settings = _kafka_settings()
    _quiet_kafka_client()
    try:
        follow_topic(
            topic, settings, lambda line: print(line, flush=True), from_beginning=from_beginning,
            max_messages=max_messages, idle_timeout=idle_timeout,
        )  # fmt: skip
    except KafkaError as exc:
        raise _kafka_unreachable(settings, exc) from None


def _quiet_kafka_client() -> None:
    """The one-shot tools report a broker they cannot reach in one line of their own; the
    client's retry log (tens of lines while it tries) would only bury it."""
    logging.getLogger("kafka").setLevel(logging.CRITICAL)


def _kafka_unreachable(settings: KafkaSettings, exc: Exception) -> typer.Exit:
    """The one-line error for a broker that kafka-python (KafkaError) or librdkafka
    (KafkaException) could not use."""
    from confluent_kafka import KafkaError as RdKafkaError
    from confluent_kafka import KafkaException
    from kafka.errors import KafkaTimeoutError

    no_answer = (RdKafkaError._TIMED_OUT, RdKafkaError._TRANSPORT, RdKafkaError._ALL_BROKERS_DOWN)
    if isinstance(exc, KafkaException):
        error = exc.args[0]
        timed_out = error.code() in no_answer
        detail = error.str()
    else:
        timed_out, detail = isinstance(exc, KafkaTimeoutError), str(exc)
    why = (
        f"no answer within {settings.kafka_connect_seconds:g} s, FRAUD_KAFKA_CONNECT_SECONDS"
        if timed_out
        else detail
    )
    return fail(
        f"cannot use Kafka at {settings.kafka_bootstrap} ({why}); is the "
        "broker running (`fraud kafka start`), and is FRAUD_KAFKA_BOOTSTRAP right?"
    )


if __name__ == "__main__":
    app()
