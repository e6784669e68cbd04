"""Promotion in the MLflow UI, in a real browser, while transactions flow.

The session's real stack: Kafka, `fraud mlflow` over a registry the pipeline filled (versions 1
and 2), and, started here, `fraud score`, `fraud api` and `fraud monitor` following the
production alias.
Playwright drives Debian's chromium through the MLflow UI as a person does (model page, version
2, Aliases "Add", pick the alias, "Save aliases"); the scorer and the API must switch to version
2 within their poll interval, every transaction sent must get exactly one prediction or dead
letter, and the monitor's drift report must open without a page error. Screenshots go to
reports/screenshots/ for the README.

MLflow 3's alias editor rewrites what a person types: characters other than letters, digits,
`_` and `-` dropped, the rest in lower case. The production alias must survive that, or a person
could never move it in the UI (`Production` could not).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from playwright.sync_api import Page, expect

from fraud.schema import TRANSACTION_COLUMNS
from infra.settings import PRODUCTION_ALIAS
from serving.replay import ReplaySummary, replay
from tests.browser import PageProblems, chromium, screenshot
from tests.harness import ApiServer, HarnessError, Monitor, Scorer, new_topics, wait_until
from tests.integration.registry_server import MODEL, RegistryServer
from tests.integration.streaming import (
    Outputs,
    booster_scores,
    check_exactly_once_accounting,
    read_outputs,
    settings_from,
)
from tests.synthetic import synthetic_transactions

pytestmark = pytest.mark.timeout(540)  # with the registry's two trainings

ALIAS = PRODUCTION_ALIAS  # what the services follow by default
OLD, NEW = "1", "2"
POLL_SECONDS = 2.0  # FRAUD_MODEL_POLL_SECONDS of the scorer, the API and the monitor
# Beyond one poll: downloading, loading and validating the version on a 2-core machine that
# also runs the broker, the registry, the browser and the stream.
MARGIN_SECONDS = 6.0
RATE = 300  # transactions per second, steady, across the promotion
STREAM_SECONDS = 60  # the click comes after 5 to 40 s of it


@dataclass
class Stack:
    env: dict[str, str]
    scorer: Scorer
    api: ApiServer
    monitor: Monitor

    @property
    def services(self) -> tuple[Scorer, ApiServer, Monitor]:
        return (self.scorer, self.api, self.monitor)


@pytest.fixture
def stack(kafka_broker: Any, registry: RegistryServer, tmp_path: Path) -> Iterator[Stack]:
    """Scorer, API and monitor on the session's broker and registry, following `ALIAS` (on
    version 1 to begin with); the alias goes back where it was, and every process stops."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=registry.uri)
    try:
        before: str | None = str(client.get_model_version_by_alias(MODEL, ALIAS).version)
    except MlflowException:
        before = None
    registry.promote(OLD, ALIAS)
    topics = new_topics(kafka_broker.bootstrap, "browser")
    env = {
        **registry.env,
        **topics,
        "FRAUD_MODEL_POLL_SECONDS": str(POLL_SECONDS),
        "FRAUD_SCORER_GROUP_ID": f"scorer-{topics['FRAUD_TOPIC_TRANSACTIONS']}",
        "FRAUD_SCORER_SESSION_TIMEOUT_MS": "6000",
        "FRAUD_MONITOR_GROUP_ID": f"monitor-{topics['FRAUD_TOPIC_TRANSACTIONS']}",
        "FRAUD_MONITOR_RUN_SECONDS": "1",
        "FRAUD_MONITOR_REPORTS_DIR": str(tmp_path / "drift"),
        # Idle priority could starve it on two cores until the stream ends; not what this tests.
        "FRAUD_MONITOR_CPU_IDLE": "false",
        # A fresh member's second join sometimes never completes on the client's side (the
        # broker has the group stable, the client stops heartbeating and gets no records); the
        # monitor's watchdog rejoins after two session timeouts: 12 s here, not a minute.
        "FRAUD_MONITOR_SESSION_TIMEOUT_MS": "6000",
    }
    stack = Stack(
        env,
        Scorer(env, tmp_path / "scorer.log", cwd=tmp_path),
        ApiServer(env, tmp_path / "api.log", cwd=tmp_path),
        Monitor(env, tmp_path / "monitor.log", cwd=tmp_path),
    )
    try:
        for service in stack.services:
            service.start()
        for service in stack.services:
            service.wait_ready(timeout=120)
        yield stack
    finally:
        for service in stack.services:
            service.ensure_stopped()
        if before is None:
            client.delete_registered_model_alias(MODEL, ALIAS)
        else:
            registry.promote(before, ALIAS)


class Stream:
    """`fraud replay`'s function in a thread: a bounded stream at a steady rate."""

    def __init__(self, env: dict[str, str], source: Path) -> None:
        self.result: ReplaySummary | None = None
        self.error: BaseException | None = None
        options = {"rate": RATE, "limit": RATE * STREAM_SECONDS, "bad_fraction": 0.01, "seed": 7}
        self._thread = threading.Thread(target=self._run, args=(env, source, options))
        self._thread.start()

    def _run(self, env: dict[str, str], source: Path, options: dict[str, Any]) -> None:
        try:
            self.result = replay(source, settings=settings_from(env), keep_records=True, **options)
        except BaseException as exc:
            self.error = exc

    def wait(self) -> None:
        self._thread.join(timeout=STREAM_SECONDS + 120)

    def join(self) -> ReplaySummary:
        self.wait()
        if self.error is not None:
            raise self.error
        assert self.result is not None, "the replay did not finish"
        return self.result


@dataclass
class ApiTraffic:
    """Single-transaction requests to the API, one after the other, until stopped: each
    response's wall-clock time, status and version."""

    url: str
    rows: list[dict[str, Any]]
    answers: list[tuple[float, int, str | None]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run)
        self._thread.start()

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as http:
            for i in range(1_000_000):  # bounded; stopped much sooner
                if self.stop.wait(0.02):
                    return
                try:
                    response = http.post("/v1/score", json=self.rows[i % len(self.rows)])
                except httpx.HTTPError:  # counted as no answer (status 0)
                    self.answers.append((time.time(), 0, None))
                    continue
                version = response.json().get("model_version") if response.is_success else None
                self.answers.append((time.time(), response.status_code, version))

    def finish(self) -> list[tuple[float, int, str | None]]:
        self.stop.set()
        self._thread.join(timeout=30)
        return self.answers


def open_model_page(page: Page, registry: RegistryServer) -> None:
    page.goto(f"{registry.uri}/#/models/{MODEL}")
    # The registered model's versions table, with the alias on its version (MLflow's own
    # rendering of an alias: "@ name").
    expect(page.get_by_role("link", name=f"Version {NEW}", exact=True)).to_be_visible()
    expect(page.get_by_text(f"@ {ALIAS}", exact=True)).to_be_visible()
    close_assistant = page.get_by_role("button", name="Close", exact=True).and_(
        page.locator('[data-component-id="mlflow.assistant.chat_panel.close"]')
    )
    if close_assistant.is_visible():  # MLflow's chat side panel covers half of the table
        close_assistant.click()


def promote_in_the_ui(page: Page, registry: RegistryServer) -> tuple[float, dict[str, Any]]:
    """From the model page, put `ALIAS` on version `NEW` as a person does; the wall-clock time
    of the click on "Save aliases" and the request the UI sent."""
    page.get_by_role("link", name=f"Version {NEW}", exact=True).click()
    expect(page.get_by_role("heading", name=f"Version {NEW}", exact=True)).to_be_visible()
    # Beside "Aliases:", "Add" when the version has none, a pencil when it has (challenger).
    page.get_by_title(re.compile(r"^(Add|Edit) aliases$")).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(f"alias for model version {NEW}")
    dialog.get_by_role("combobox").fill(ALIAS)
    # The alias exists (on version 1): the dropdown offers it with the version it is on.
    existing = page.get_by_test_id("model-alias-option").filter(
        has=page.get_by_text(ALIAS, exact=True)
    )
    expect(existing).to_contain_text(f"Version {OLD}")
    existing.click()
    expect(dialog.get_by_text(f"@ {ALIAS}", exact=True)).to_be_visible()
    screenshot(page, "mlflow-promote-dialog")
    save = dialog.get_by_role("button", name="Save aliases", exact=True)
    with page.expect_response(
        lambda r: r.url.endswith("/registered-models/alias") and r.request.method == "POST"
    ) as sent:
        clicked_at = time.time()
        save.click()
    assert sent.value.ok, f"the UI's alias request answered {sent.value.status}"
    request = sent.value.request.post_data_json
    assert isinstance(request, dict), request
    expect(dialog).to_be_hidden()
    return clicked_at, request


def wait_for_drift_run(monitor: Monitor, version: str, timeout: float) -> None:
    """Until the monitor's latest run compared transactions and predictions with `version`'s
    baseline; the end of its log if it does not come."""

    def ran() -> bool:
        summary = monitor.drift()
        return bool(
            summary
            and summary["model"]["version"] == version
            and summary["window"]["predictions"] > 0
        )

    try:
        wait_until(ran, timeout, f"a drift run against version {version}'s baseline", poll=0.5)
    except HarnessError as exc:
        raise AssertionError(
            f"{exc}; the end of the monitor's log:\n{monitor.log_tail(30)}"
        ) from None


def seconds_since(moment: float, iso: str) -> float:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() - moment


def check_predictions(
    sent: ReplaySummary, outputs: Outputs, registry: RegistryServer, clicked_at: float
) -> dict[str, int]:
    """Each transaction id has one output; each prediction is its version's booster score;
    version 1 before the click, version 2 once a poll interval and the margin have passed,
    and no partition goes back. The count per version."""
    check_exactly_once_accounting(sent.records, outputs, allow_duplicates=False)
    valid = {r.transaction_id: r for r in sent.records if r.expected is None}
    malformed = {r.transaction_id for r in sent.records if r.expected is not None}
    predicted = Counter(p["transaction_id"] for p in outputs.predictions)
    dead = Counter((record.key or b"").decode() for record in outputs.dead_letters)
    assert set(predicted) == set(valid) and set(predicted.values()) == {1}, "one prediction each"
    assert set(dead) == malformed and set(dead.values()) == {1}, "one dead letter each"

    by_version: dict[str, list[dict[str, Any]]] = {}
    for p in outputs.predictions:
        by_version.setdefault(p["model_version"], []).append(p)
        assert p["threshold"] == registry.thresholds[p["model_version"]]
        after = seconds_since(clicked_at, p["scored_at"])
        if after < 0:
            assert p["model_version"] == OLD, f"{p['transaction_id']} scored by {NEW} before"
        elif after > POLL_SECONDS + MARGIN_SECONDS:
            assert p["model_version"] == NEW, f"{p['transaction_id']} still on {OLD} {after:.1f} s"
    assert set(by_version) == {OLD, NEW}, f"versions seen: {sorted(by_version)}"
    for version, predictions in by_version.items():
        rows = [valid[p["transaction_id"]].row or [] for p in predictions]
        got = np.array([p["fraud_probability"] for p in predictions], dtype=np.float32)
        want = booster_scores(registry.boosters[version], rows)
        np.testing.assert_array_equal(got, want, err_msg=f"version {version}")
    last_old: dict[int, int] = {}
    for p in by_version[OLD]:
        partition = p["source"]["partition"]
        last_old[partition] = max(last_old.get(partition, -1), p["source"]["offset"])
    for p in by_version[NEW]:
        assert p["source"]["offset"] > last_old.get(p["source"]["partition"], -1), "went back"
    return {version: len(predictions) for version, predictions in by_version.items()}


def test_promotion_in_the_mlflow_ui_switches_scorer_and_api_without_losing_a_transaction(
    stack: Stack, registry: RegistryServer, tmp_path: Path
) -> None:
    began = time.monotonic()
    # What MLflow's alias editor keeps of what a person types (its normalisation, MLflow 3.17).
    assert re.sub(r"[^\w-]", "", ALIAS).lower() == ALIAS, f"the MLflow UI cannot write {ALIAS!r}"
    frame = synthetic_transactions(rows=5_000, fraud_rate=0.02, seed=17)
    source = tmp_path / "stream.parquet"
    frame.to_parquet(source)
    rows = [
        {"transaction_id": f"tx-api-{i}", **{c: float(row[c]) for c in TRANSACTION_COLUMNS}}
        for i, row in enumerate(frame.head(50).to_dict("records"))
    ]
    scorer, api, monitor = stack.services
    info = f'alias="{ALIAS}",name="{MODEL}",version="{{}}"'

    with chromium() as browser:
        page = browser.new_page()
        open_model_page(page, registry)
        screenshot(page, "mlflow-promote-before")

        stream = Stream(stack.env, source)
        traffic = ApiTraffic(api.url, rows)
        try:
            wait_until(
                lambda: scorer.metric("fraud_transactions_consumed_total") >= 3 * RATE,
                60,
                "three seconds of the stream scored by version 1",
                poll=0.2,
            )
            assert scorer.metric("fraud_model_info", info.format(OLD)) == 1
            wait_for_drift_run(monitor, OLD, timeout=40)  # the whole stack is up

            clicked_at, request = promote_in_the_ui(page, registry)
            assert request == {"name": MODEL, "alias": ALIAS, "version": NEW}, request

            switched: dict[str, float] = {}

            def api_version() -> str | None:
                status, body = api.get("/ready", timeout=2)
                return str(json.loads(body)["model_version"]) if status == 200 else None

            def both_switched() -> bool:
                if "scorer" not in switched and scorer.metric("fraud_model_info", info.format(NEW)):
                    switched["scorer"] = time.time() - clicked_at
                if "api" not in switched and api_version() == NEW:
                    switched["api"] = time.time() - clicked_at
                return len(switched) == 2

            wait_until(both_switched, POLL_SECONDS + MARGIN_SECONDS, "scorer and API on 2", 0.1)

            expect(page.get_by_text(f"@ {ALIAS}", exact=True)).to_be_visible()
            open_model_page(page, registry)
            screenshot(page, "mlflow-promote-after")
            sent = stream.join()
        finally:
            answers = traffic.finish()
            stream.wait()

        from mlflow import MlflowClient

        holder = MlflowClient(tracking_uri=registry.uri).get_model_version_by_alias(MODEL, ALIAS)
        assert str(holder.version) == NEW

        outputs = read_outputs(stack.env, expected=sent.sent)
        counts = check_predictions(sent, outputs, registry, clicked_at)
        first_new = min(
            seconds_since(clicked_at, p["scored_at"])
            for p in outputs.predictions
            if p["model_version"] == NEW
        )
        assert 0 <= first_new <= POLL_SECONDS + MARGIN_SECONDS, first_new

        statuses = Counter(status for _, status, _ in answers)
        assert set(statuses) == {200}, f"API answers: {statuses}"
        versions = [version for _, _, version in answers]
        assert versions[0] == OLD and versions[-1] == NEW, "the API did not follow the alias"
        assert set(versions[versions.index(NEW) :]) == {NEW}, "the API went back to version 1"
        api_first_new = next(at for at, _, v in answers if v == NEW) - clicked_at
        assert scorer.metric("fraud_model_reloads_total", 'result="success"') == 2
        assert api.metric("fraud_model_reloads_total", 'result="success"') == 2

        # The monitor follows the alias too: a run over the stream against version 2's baseline.
        wait_for_drift_run(monitor, NEW, timeout=120)
        problems = PageProblems()
        report = problems.watch(browser.new_page())
        response = report.goto(f"{monitor.url}/report", wait_until="load")
        assert response is not None and response.status == 200, response
        expect(report.get_by_text(re.compile(r"^Drift in column 'V\d+'$")).first).to_be_visible()
        report.wait_for_load_state("networkidle")
        screenshot(report, "drift-report")
        assert problems.found == [], "\n".join(problems.found)

    for service in stack.services:
        assert service.terminate() == 0, service.log_tail()
    print(
        f"\nbrowser promotion: scorer on {NEW} {switched['scorer']:.2f} s after the click "
        f"(first prediction by {NEW} {first_new:.2f} s), API /ready {switched['api']:.2f} s "
        f"(first score {api_first_new:.2f} s); {sent.sent} sent, {len(outputs.predictions)} "
        f"predictions ({counts}), {len(outputs.dead_letters)} dead letters, 0 lost; "
        f"{len(answers)} API requests all 200; monitor rejoins: "
        f"{monitor.log().count('leaving and joining again')}; {time.monotonic() - began:.0f} s"
    )
