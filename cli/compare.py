"""`fraud compare`: the production and the challenger versions side by side on live labelled
traffic (the drift monitor's /v1/live), next to their offline test metrics (the registry's version
tags), so that a promotion (`fraud promote`, the MLflow UI) rests on evidence; `--tag` keeps the
comparison on the challenger's version.

The pure parts (reading the monitor's document, choosing each alias's entry, the table's rows, the
tags) take plain data and are unit-tested; `compare` around them does the I/O.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated

import typer
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from rich.console import Console
from rich.table import Table

from cli.environment import run_with_environment
from cli.errors import fail, invalid_settings
from infra.registry import (
    EDITOR_LOGIN,
    RegistryError,
    VersionSummary,
    access_problem,
    list_versions,
)
from infra.settings import (
    CHALLENGER_ALIAS,
    MLFLOW_CLIENT_DEFAULTS,
    PRODUCTION_ALIAS,
    ModelSettings,
    MonitorSettings,
)

console = Console(soft_wrap=True)

LIVE_PATH = "/v1/live"
SLIDING, SINCE_START = "sliding", "since_start"
# Fewer labelled frauds than this make recall a coarse figure (one fraud moves it by 5 points or
# more); FraudLiveRecallBelowGate (monitoring/prometheus/rules/live.yml) waits for as many.
MIN_FRAUDS = 20
# The version tags the pipeline's evaluate and register stages write (infra/registry.py).
OFFLINE_TAGS = (
    ("AUPRC", "auprc"),
    ("ROC-AUC", "roc_auc"),
    ("recall@P0.90", "recall_at_p90"),
    ("threshold", "threshold"),
)
RECALL_GATE_TAG = "gate_min_recall_at_p90"
# What `--tag` writes (the shared contract of issue 12): the challenger's figures as live_*, the
# production version's beside them as live_production_*, so the comparison stays on the version.
TAGGED_FIGURES = ("precision", "recall", "auprc", "alerts_per_1000", "transactions", "frauds")


class CompareError(RuntimeError):
    """What the user must do, as a sentence."""


class _Contract(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Figures(_Contract):
    """One window of one version, as /v1/live reports it; None where a figure is undefined
    (precision without alerts, recall without frauds, coverage of nothing)."""

    transactions: int = Field(ge=0)
    labelled: int = Field(ge=0)
    frauds: int = Field(ge=0)
    alerts: int = Field(ge=0)
    precision: float | None
    recall: float | None
    auprc: float | None
    alerts_per_1000: float | None
    label_coverage: float | None


class LiveModel(_Contract):
    """One version seen under one alias since the monitor started."""

    alias: str
    version: str
    threshold: float | None = None
    recall_gate: float | None = None
    windows: dict[str, Figures]

    @field_validator("version", mode="before")
    @classmethod
    def _number_is_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) else value


class LiveReport(_Contract):
    """The monitor's GET /v1/live."""

    updated_at: str | None = None
    label_delay_seconds: float = Field(ge=0)
    window_size: int = Field(ge=1)
    models: tuple[LiveModel, ...]


@dataclass(frozen=True)
class Side:
    """One alias of the comparison: its live entry and its registered version."""

    alias: str
    live: LiveModel
    registered: VersionSummary

    def recall_gate(self) -> float | None:
        """The version's recall quality gate: its registry tag, else what the monitor read."""
        tagged = _number(self.registered.tags.get(RECALL_GATE_TAG))
        return self.live.recall_gate if tagged is None else tagged


Row = tuple[str, str, str, str]  # group, figure, production, challenger


# --- where the monitor answers, and what it says -----------------------------------------------


def live_url(settings: MonitorSettings, given: str | None = None) -> str:
    """The monitor's /v1/live: `given` (its base URL, or the route itself), else the monitor's
    own host and port (FRAUD_MONITOR_METRICS_HOST/PORT; a monitor listening on every interface
    answers on 127.0.0.1)."""
    if given:
        base = given.rstrip("/")
        return base if base.endswith(LIVE_PATH) else base + LIVE_PATH
    host = settings.monitor_metrics_host
    host = "127.0.0.1" if host in ("", "0.0.0.0") else f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.monitor_metrics_port}{LIVE_PATH}"


def parse_live(document: object, url: str) -> LiveReport:
    """The monitor's answer as the contract has it; CompareError naming what does not fit."""
    try:
        return LiveReport.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the document"
        raise CompareError(
            f"the monitor at {url} answered a document that is not /v1/live's ({where}: "
            f"{first['msg']}); is it this version of `fraud monitor`?"
        ) from None


def read_live(url: str, timeout: float = 5.0) -> LiveReport:
    """GET the monitor's /v1/live; CompareError when it does not answer, or not with JSON."""
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise CompareError(f"--monitor {url} is not an http:// or https:// URL.")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        raise CompareError(
            f"the monitor at {url} answered HTTP {exc.code}: is it a `fraud monitor` serving "
            "live figures, and is the URL its base (e.g. http://127.0.0.1:8002)?"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        why = getattr(exc, "reason", exc)
        raise CompareError(
            f"the drift monitor does not answer at {url} ({why}): start it with `fraud monitor` "
            "(or the whole stack with `fraud up`), or name where it runs with --monitor URL."
        ) from None
    try:
        document = json.loads(body)
    except ValueError:
        raise CompareError(f"the monitor at {url} answered something else than JSON.") from None
    return parse_live(document, url)


# --- the comparison ----------------------------------------------------------------------------


def aliased(
    versions: Sequence[VersionSummary], model: str
) -> tuple[VersionSummary, VersionSummary]:
    """The production and the challenger versions; CompareError when one is missing or both are
    the same version."""
    production = next((v for v in versions if PRODUCTION_ALIAS in v.aliases), None)
    challenger = next((v for v in versions if CHALLENGER_ALIAS in v.aliases), None)
    if production is None:
        raise CompareError(
            f"no version of {model} is in {PRODUCTION_ALIAS}: promote one first "
            "(`fraud promote --version N`)."
        )
    if challenger is None:
        raise CompareError(
            f"no version of {model} is the {CHALLENGER_ALIAS}, so there is nothing to compare "
            f"{PRODUCTION_ALIAS} (version {production.version}) with: the pipeline (`dvc repro`) "
            "sets that alias on a version passing its quality gates."
        )
    if challenger.version == production.version:
        raise CompareError(
            f"version {production.version} of {model} is both {PRODUCTION_ALIAS} and "
            f"{CHALLENGER_ALIAS}: there is nothing to compare until the pipeline registers "
            "another version."
        )
    return production, challenger


def live_model(
    report: LiveReport, alias: str, version: int, url: str, labels_topic: str
) -> LiveModel:
    """The monitor's entry for `version` under `alias`, holding resolved transactions;
    CompareError saying what gives it figures when there is none."""
    seen = [m for m in report.models if m.alias == alias]
    entry = next((m for m in seen if m.version == str(version)), None)
    if (
        entry is not None
        and {SLIDING, SINCE_START} <= entry.windows.keys()
        and entry.windows[SINCE_START].transactions > 0
    ):
        return entry
    others = sorted({m.version for m in seen} - {str(version)})
    versions = f"version{'s' if len(others) > 1 else ''} {', '.join(others)}"
    also = f" (it has figures for {versions} only)" if others else ""
    shadow = (
        "; the challenger's figures also need a scorer shadow-scoring (`fraud score --shadow`)"
        if alias == CHALLENGER_ALIAS
        else ""
    )
    raise CompareError(
        f"no live figures yet for {alias} (version {version}) at {url}{also}: they need labels, "
        f"from `fraud replay --labels-after S` or on the {labels_topic} topic{shadow}."
    )


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _decimal(value: float | None, places: int = 4) -> str:
    return "-" if value is None or value != value else f"{value:.{places}f}"


def _recall(value: float | None, gate: float | None) -> str:
    shown = _decimal(value)
    if value is not None and gate is not None and value < gate:
        return f"{shown} < gate"
    return shown


def _window_rows(group: str, production: Side, challenger: Side, window: str) -> list[Row]:
    p, c = production.live.windows[window], challenger.live.windows[window]
    cells: list[tuple[str, str, str]] = [
        ("transactions", f"{p.transactions:,}", f"{c.transactions:,}"),
        ("labelled frauds", f"{p.frauds:,}", f"{c.frauds:,}"),
        ("label coverage", _percent(p.label_coverage), _percent(c.label_coverage)),
        ("precision", _decimal(p.precision), _decimal(c.precision)),
        (
            "recall",
            _recall(p.recall, production.recall_gate()),
            _recall(c.recall, challenger.recall_gate()),
        ),
        ("AUPRC", _decimal(p.auprc), _decimal(c.auprc)),
        ("alerts per 1,000", _decimal(p.alerts_per_1000, 2), _decimal(c.alerts_per_1000, 2)),
    ]
    return [(group if i == 0 else "", *cell) for i, cell in enumerate(cells)]


def _percent(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.1%}"


def comparison_rows(report: LiveReport, production: Side, challenger: Side) -> list[Row]:
    """The table: each live window, then the offline test metrics and the recall gate."""
    rows = _window_rows(
        f"live, last {report.window_size:,} resolved", production, challenger, SLIDING
    )
    rows += _window_rows("live, since start", production, challenger, SINCE_START)
    offline: list[tuple[str, str, str]] = [
        (
            label,
            _decimal(_number(production.registered.tags.get(key))),
            _decimal(_number(challenger.registered.tags.get(key))),
        )
        for label, key in OFFLINE_TAGS
    ]
    offline.append(
        (
            "recall gate",
            _decimal(production.recall_gate(), 2),
            _decimal(challenger.recall_gate(), 2),
        )
    )
    rows += [("offline, test split" if i == 0 else "", *cell) for i, cell in enumerate(offline)]
    return rows


def notes(report: LiveReport, production: Side, challenger: Side) -> list[str]:
    """What the table does not say by itself: how a transaction counts as resolved, and where
    the figures rest on few frauds."""
    lines = [
        f"resolved: labelled, or unlabelled for {_duration(report.label_delay_seconds)} (then "
        f"counted legitimate); live figures at each version's threshold, as of "
        f"{report.updated_at or 'the monitor start'}."
    ]
    for side in (production, challenger):
        frauds = side.live.windows[SLIDING].frauds
        if frauds < MIN_FRAUDS:
            lines.append(
                f"few frauds: {side.alias}'s last {report.window_size:,} resolved transactions "
                f"hold {frauds} labelled fraud{'s' if frauds != 1 else ''} (fewer than "
                f"{MIN_FRAUDS}): its live recall and precision are coarse."
            )
    return lines


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.3g} s"


def comparison_tags(production: Side, challenger: Side, at: dt.datetime) -> dict[str, str]:
    """The version tags `--tag` writes on the challenger: its sliding window's figures, and
    the production version's beside them (undefined figures as "nan", as the gauges)."""
    tags: dict[str, str] = {}
    for prefix, side in (("live_", challenger), ("live_production_", production)):
        figures = side.live.windows[SLIDING]
        for name in TAGGED_FIGURES:
            value = getattr(figures, name)
            tags[prefix + name] = "nan" if value is None else str(value)
    tags["live_production_version"] = str(production.registered.version)
    tags["live_window"] = SLIDING
    tags["live_compared_at"] = at.astimezone(dt.UTC).isoformat(timespec="seconds")
    return tags


# --- the command ---------------------------------------------------------------------------------


def write_tags(model: str, version: int, tags: Mapping[str, str]) -> None:
    """Set the tags on the version; CompareError naming the login to use when refused."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from infra.tracking import configure_mlflow

    configure_mlflow()
    client = MlflowClient()
    try:
        for key, value in tags.items():
            client.set_model_version_tag(model, str(version), key, value)
    except MlflowException as exc:
        problem = access_problem(exc, client.tracking_uri, EDITOR_LOGIN)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CompareError(problem or f"the registry refused the tags: {first}") from None


def render(model: str, url: str, report: LiveReport, production: Side, challenger: Side) -> None:
    table = Table(
        title=f"{model}: {PRODUCTION_ALIAS} v{production.registered.version} against "
        f"{CHALLENGER_ALIAS} v{challenger.registered.version} (live figures from {url})"
    )
    table.add_column("", no_wrap=True)
    table.add_column("figure", no_wrap=True)
    for side in (production, challenger):
        table.add_column(f"{side.alias} v{side.registered.version}", justify="right", no_wrap=True)
    for row in comparison_rows(report, production, challenger):
        if row[0] and table.row_count:
            table.add_section()
        table.add_row(*row)
    # Not a terminal (a pipe, CI logs): rich would squeeze the table into 80 columns.
    wide = Console(soft_wrap=True, width=max(console.width, 110))
    wide.print(table)
    for line in notes(report, production, challenger):
        wide.print(line, highlight=False)


def compare(
    monitor: Annotated[
        str | None,
        typer.Option(
            "--monitor",
            metavar="URL",
            help="The drift monitor's base URL (default: http://FRAUD_MONITOR_METRICS_HOST:"
            "FRAUD_MONITOR_METRICS_PORT, 127.0.0.1:8002).",
        ),
    ] = None,
    tag: Annotated[
        bool,
        typer.Option(
            "--tag",
            help="Also write the live figures to the challenger's version as tags (live_*, and "
            "production's as live_production_*); needs the editor's login when the registry "
            "has logins.",
        ),
    ] = False,
    model: Annotated[
        str | None,
        typer.Option("--model", help="Registered model name (FRAUD_MODEL_NAME, fraud-detector)."),
    ] = None,
) -> None:
    """Production against the challenger on live labelled traffic, next to their offline test
    metrics: the evidence for `fraud promote`."""
    run_with_environment(MLFLOW_CLIENT_DEFAULTS)
    try:
        settings = MonitorSettings()
        name = model or ModelSettings().model_name
    except ValidationError as exc:
        raise invalid_settings(exc) from None
    url = live_url(settings, monitor)
    try:
        production, challenger = aliased(list_versions(name), name)
        report = read_live(url)
        current, candidate = (
            Side(alias, live_model(report, alias, v.version, url, settings.topic_labels), v)
            for alias, v in ((PRODUCTION_ALIAS, production), (CHALLENGER_ALIAS, challenger))
        )
    except (RegistryError, CompareError) as exc:
        raise fail(str(exc)) from None
    render(name, url, report, current, candidate)
    if not tag:
        return
    tags = comparison_tags(current, candidate, dt.datetime.now(dt.UTC))
    try:
        write_tags(name, challenger.version, tags)
    except CompareError as exc:
        raise fail(str(exc)) from None
    console.print(
        f"tagged {name} version {challenger.version} with {len(tags)} live_* tags "
        f"({PRODUCTION_ALIAS} was version {production.version}).",
        highlight=False,
    )
