"""`fraud kafka start|stop|status|jars`: the one-node Kafka broker of serving.kafka_broker."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from cli.errors import err_console, fail
from infra.settings import BrokerSettings, KafkaSettings
from serving.kafka_broker import (
    KAFKA_VERSION,
    BrokerError,
    ensure_jars,
    run,
    start,
    status,
    stop,
)

kafka_app = typer.Typer(
    help="Run a local Apache Kafka broker (KRaft, one node) for the scorer and the tests.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(soft_wrap=True)


def _settings(partitions: int | None = None) -> tuple[KafkaSettings, BrokerSettings]:
    try:
        if partitions is None:
            return KafkaSettings(), BrokerSettings()
        return KafkaSettings(topic_partitions=partitions), BrokerSettings()
    except ValidationError as exc:
        error = exc.errors()[0]
        variable = f"FRAUD_{str(error['loc'][0]).upper()}" if error["loc"] else "a FRAUD_ setting"
        raise fail(f"{variable} is invalid ({error['msg']}); fix or unset it.") from None


@kafka_app.command("jars")
def jars_command() -> None:
    """Fetch the broker's jars now (once, with Maven; $KAFKA_HOME/libs when KAFKA_HOME is set)."""
    try:
        libs = ensure_jars()
    except BrokerError as exc:
        raise fail(str(exc)) from None
    console.print(f"Kafka {KAFKA_VERSION} jars in {libs}")


@kafka_app.command("start")
def start_command(
    partitions: Annotated[
        int | None,
        typer.Option(
            "--partitions",
            min=1,
            help="Partitions of each topic it creates (default: FRAUD_TOPIC_PARTITIONS, else 3).",
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the broker to answer.", min=1)
    ] = 60.0,
) -> None:
    """Start the broker (if not running), create the topics, check that transactions work."""
    kafka, broker = _settings(partitions)
    try:
        ensure_jars()
        result = start(kafka, broker, timeout=timeout)
    except BrokerError as exc:
        raise fail(str(exc)) from None
    if result.already_running:
        console.print(
            f"Kafka broker already running on {result.bootstrap} (pid {result.pid}).",
            highlight=False,
        )
        return
    console.print(
        f"Kafka {KAFKA_VERSION} broker started on {result.bootstrap} in {result.seconds:.1f} s "
        f"(pid {result.pid}, data in {broker.data_dir}, log {broker.log_file}).",
        highlight=False,
    )
    if result.created_topics:
        console.print(
            f"created topics {', '.join(result.created_topics)} "
            f"with {kafka.topic_partitions} partitions each.",
            highlight=False,
        )


@kafka_app.command("run")
def run_command(
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the broker to answer.", min=1)
    ] = 60.0,
) -> None:
    """Run the broker in the foreground (for a process manager, as `fraud up` does): its log on
    stdout, stopped by SIGTERM or Ctrl-C; creates the topics once it answers."""
    kafka, broker = _settings()

    def say_ready(created: tuple[str, ...]) -> None:
        topics = f"; created topics {', '.join(created)}" if created else ""
        err_console.print(
            f"Kafka {KAFKA_VERSION} broker ready on {kafka.kafka_bootstrap}{topics}.",
            highlight=False,
        )

    try:
        code = run(kafka, broker, on_ready=say_ready)
    except BrokerError as exc:
        raise fail(str(exc)) from None
    raise typer.Exit(code=code)


@kafka_app.command("stop")
def stop_command(
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait after SIGTERM before SIGKILL.", min=1)
    ] = 30.0,
) -> None:
    """Stop the broker; its data stays for the next start."""
    _, broker = _settings()
    try:
        pid = stop(broker, timeout=timeout)
    except (BrokerError, PermissionError) as exc:
        raise fail(str(exc)) from None
    if pid is None:
        console.print(f"No Kafka broker was running from {broker.data_dir}.", highlight=False)
    else:
        console.print(f"Kafka broker stopped (pid {pid}).", highlight=False)


@kafka_app.command("status")
def status_command() -> None:
    """Say whether the broker runs and list its topics; exit code 1 if it does not run."""
    kafka, broker = _settings()
    try:
        state = status(kafka, broker)
    except BrokerError as exc:
        raise fail(str(exc)) from None
    if not state.running:
        console.print(
            f"Kafka broker not running (data dir {state.data_dir}); start it with "
            "`fraud kafka start`.",
            highlight=False,
        )
        if state.answering:
            console.print(
                f"Something else answers on {state.bootstrap} (not started from this data dir).",
                highlight=False,
            )
        raise typer.Exit(code=1)
    memory = f", RSS {state.rss_bytes / 2**20:.0f} MiB" if state.rss_bytes else ""
    console.print(
        f"Kafka broker running on {state.bootstrap} (pid {state.pid}{memory}, "
        f"data in {state.data_dir}).",
        highlight=False,
    )
    if not state.answering:
        console.print("It does not answer yet: it may still be starting.", highlight=False)
        return
    table = Table(title="topics")
    table.add_column("topic", no_wrap=True)
    table.add_column("partitions", justify="right")
    for name, count in sorted(state.topics.items()):
        table.add_row(name, str(count))
    console.print(table)
