"""`fraud compare`'s pure parts: where the monitor's /v1/live is, reading it as the contract has
it, choosing each alias's entry, the table's rows and notes, and the tags `--tag` writes. The
command against a real registry is in tests/integration/test_compare_cli.py."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.app import app
from cli.compare import (
    CompareError,
    LiveReport,
    Row,
    Side,
    aliased,
    comparison_rows,
    comparison_tags,
    live_model,
    live_url,
    notes,
    parse_live,
    read_live,
)
from infra.registry import VersionSummary
from infra.settings import MonitorSettings
from tests.live_document import document, model, production_and_challenger, window

URL = "http://127.0.0.1:8002/v1/live"
OFFLINE = {"auprc": "0.8025", "roc_auc": "0.9842", "recall_at_p90": "0.7467", "threshold": "0.5965"}


def version(number: int, *aliases: str, **tags: str) -> VersionSummary:
    return VersionSummary(number, tuple(aliases), 0, f"run-{number}", dict(tags))


def report(doc: dict[str, Any] | None = None) -> LiveReport:
    return parse_live(production_and_challenger() if doc is None else doc, URL)


def sides(doc: dict[str, Any] | None = None, **challenger_tags: str) -> tuple[Side, Side]:
    live = report(doc)
    production = Side("production", live.models[0], version(1, "production", **OFFLINE))
    challenger = Side("challenger", live.models[1], version(2, "challenger", **challenger_tags))
    return production, challenger


# --- where ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "port", "given", "url"),
    [
        ("127.0.0.1", 8002, None, "http://127.0.0.1:8002/v1/live"),
        ("0.0.0.0", 8102, None, "http://127.0.0.1:8102/v1/live"),
        ("::1", 8002, None, "http://[::1]:8002/v1/live"),
        ("127.0.0.1", 8002, "http://monitor:8002", "http://monitor:8002/v1/live"),
        ("127.0.0.1", 8002, "http://monitor:8002/", "http://monitor:8002/v1/live"),
        ("127.0.0.1", 8002, "http://monitor:8002/v1/live", "http://monitor:8002/v1/live"),
    ],
)
def test_the_live_url_is_the_monitors_own_or_the_one_given(
    host: str, port: int, given: str | None, url: str
) -> None:
    settings = MonitorSettings(monitor_metrics_host=host, monitor_metrics_port=port)
    assert live_url(settings, given) == url


def test_only_http_urls_are_read() -> None:
    with pytest.raises(CompareError, match="not an http"):
        read_live("file:///etc/passwd")


# --- the document ------------------------------------------------------------------------------


def test_the_contracts_document_reads_with_its_nulls() -> None:
    doc = production_and_challenger()
    doc["models"][0]["recall_gate"] = None
    doc["models"][1]["windows"]["sliding"] |= {"precision": None, "recall": None, "auprc": None}
    doc["models"][1]["version"] = 2  # a number where the contract has text: the same version
    live = report(doc)
    assert [(m.alias, m.version) for m in live.models] == [("production", "1"), ("challenger", "2")]
    assert live.models[0].recall_gate is None
    assert live.models[1].windows["sliding"].recall is None
    assert live.window_size == 10_000 and live.label_delay_seconds == 604_800


def test_a_document_off_the_contract_names_where() -> None:
    doc = production_and_challenger()
    del doc["models"][1]["windows"]["sliding"]["frauds"]
    with pytest.raises(CompareError, match=r"models\.1\.windows\.sliding\.frauds") as refused:
        report(doc)
    assert URL in str(refused.value)


# --- choosing ------------------------------------------------------------------------------------


def test_the_aliased_versions_or_what_is_missing() -> None:
    assert aliased([version(2, "challenger"), version(1, "production")], "m") == (
        version(1, "production"),
        version(2, "challenger"),
    )
    with pytest.raises(CompareError, match="no version of m is the challenger"):
        aliased([version(2), version(1, "production")], "m")
    with pytest.raises(CompareError, match="fraud promote"):
        aliased([version(2, "challenger")], "m")
    with pytest.raises(CompareError, match="both production and challenger"):
        aliased([version(1, "challenger", "production")], "m")


def test_the_entry_of_the_aliased_version_newest_first() -> None:
    doc = production_and_challenger()
    older = model("challenger", "1", window(500, 1, 2, 1), window(500, 1, 2, 1))
    doc["models"].append(older)
    live = report(doc)
    assert live_model(live, "challenger", 2, URL, "labels").version == "2"
    assert live_model(live, "challenger", 1, URL, "labels").windows["sliding"].transactions == 500


def test_no_figures_for_the_version_say_labels_are_needed() -> None:
    live = report()
    with pytest.raises(CompareError) as missing:
        live_model(live, "challenger", 3, URL, "labels-x")
    message = str(missing.value)
    for fragment in (
        "challenger (version 3)",
        URL,
        "version 2 only",
        "fraud replay --labels-after",
        "labels-x topic",
        "fraud score --shadow",
    ):
        assert fragment in message


def test_an_entry_without_resolved_transactions_has_no_figures() -> None:
    empty = window(0, 0, 0, 0)
    live = report(document(model("production", "1", empty, empty)))
    with pytest.raises(CompareError, match=r"production \(version 1\)") as missing:
        live_model(live, "production", 1, URL, "labels")
    assert "shadow" not in str(missing.value)


# --- the table -----------------------------------------------------------------------------------


def test_the_rows_put_live_windows_beside_offline_metrics() -> None:
    production, challenger = sides(
        auprc="0.83", roc_auc="0.99", recall_at_p90="0.8", threshold="0.55"
    )
    rows = comparison_rows(report(), production, challenger)
    groups = [row[0] for row in rows if row[0]]
    assert groups == ["live, last 10,000 resolved", "live, since start", "offline, test split"]
    figures = {(group, row[1]): row[2:] for group, row in _grouped(rows)}
    sliding = "live, last 10,000 resolved"
    assert figures[sliding, "transactions"] == ("10,000", "10,000")
    assert figures[sliding, "labelled frauds"] == ("25", "25")
    assert figures[sliding, "label coverage"] == ("100.0%", "100.0%")
    assert figures[sliding, "precision"] == ("0.8750", "0.9200")
    assert figures[sliding, "recall"] == ("0.8400", "0.9200")
    assert figures[sliding, "AUPRC"] == ("0.8100", "0.8600")
    assert figures[sliding, "alerts per 1,000"] == ("2.40", "2.50")
    assert figures["live, since start", "transactions"] == ("40,000", "40,000")
    assert figures["offline, test split", "AUPRC"] == ("0.8025", "0.8300")
    assert figures["offline, test split", "threshold"] == ("0.5965", "0.5500")
    assert figures["offline, test split", "recall gate"] == ("0.70", "0.70")


def test_recall_below_the_gate_is_marked_and_the_registrys_gate_wins() -> None:
    doc = production_and_challenger()
    doc["models"][0]["windows"]["sliding"] = window(10_000, 25, 24, 15)  # recall 0.6 < 0.7
    doc["models"][1]["windows"]["sliding"] = window(10_000, 25, 0, 0)  # no alerts at all
    production, challenger = sides(doc, gate_min_recall_at_p90="0.5")
    rows = comparison_rows(report(doc), production, challenger)
    figures = {(group, row[1]): row[2:] for group, row in _grouped(rows)}
    sliding = "live, last 10,000 resolved"
    assert figures[sliding, "recall"] == ("0.6000 < gate", "0.0000 < gate")
    assert figures[sliding, "precision"] == ("0.6250", "-")  # no alerts: undefined
    assert figures["offline, test split", "recall gate"] == ("0.70", "0.50")
    assert figures["offline, test split", "AUPRC"][1] == "-"  # no tag on the version


def test_notes_say_how_transactions_resolve_and_where_frauds_are_few() -> None:
    doc = production_and_challenger()
    doc["models"][1]["windows"]["sliding"] = window(10_000, 1, 3, 1)
    production, challenger = sides(doc)
    lines = notes(report(doc), production, challenger)
    assert "unlabelled for 7 d" in lines[0] and "2026-12-01T10:00:00+00:00" in lines[0]
    assert len(lines) == 2
    assert "challenger's last 10,000 resolved transactions hold 1 labelled fraud " in lines[1]


def _grouped(rows: list[Row]) -> list[tuple[str, Row]]:
    """Each row with the group it belongs to (only a group's first row names it)."""
    grouped: list[tuple[str, Row]] = []
    group = ""
    for row in rows:
        group = row[0] or group
        grouped.append((group, row))
    return grouped


# --- the tags ------------------------------------------------------------------------------------


def test_the_tags_are_the_contracts_names_with_undefined_as_nan() -> None:
    doc = production_and_challenger()
    doc["models"][1]["windows"]["sliding"] |= {"precision": None}
    production, challenger = sides(doc)
    at = dt.datetime(2026, 12, 1, 11, 30, 5, 123, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    tags = comparison_tags(production, challenger, at)
    figures = ("precision", "recall", "auprc", "alerts_per_1000", "transactions", "frauds")
    assert set(tags) == {
        *(f"live_{f}" for f in figures),
        *(f"live_production_{f}" for f in figures),
        "live_production_version",
        "live_window",
        "live_compared_at",
    }
    assert tags["live_precision"] == "nan"
    assert float(tags["live_recall"]) == pytest.approx(23 / 25)
    assert tags["live_transactions"] == "10000" and tags["live_frauds"] == "25"
    assert float(tags["live_production_recall"]) == pytest.approx(21 / 25)
    assert float(tags["live_production_alerts_per_1000"]) == pytest.approx(2.4)
    assert tags["live_production_version"] == "1"
    assert tags["live_window"] == "sliding"
    assert tags["live_compared_at"] == "2026-12-01T10:30:05+00:00"


def test_compare_documents_itself() -> None:
    result = CliRunner().invoke(app, ["compare", "--help"])
    assert result.exit_code == 0
    for option in ("--monitor", "--tag", "--model"):
        assert option in result.output
