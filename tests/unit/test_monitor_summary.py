"""monitoring.summary, .latest and .reports: what /v1/drift and /report serve, and the reports
of drifted windows kept on disk."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

from fraud.drift import DRIFT_FEATURES, SIGNALS, judge
from monitoring.latest import LatestRun
from monitoring.reports import ReportArchive, report_stem
from monitoring.summary import drift_summary
from tests.unit.monitor_fakes import FakeSnapshot, drift_run, thresholds, window_signals

AT = dt.datetime(2025, 1, 2, 3, 4, 5, 678_900, tzinfo=dt.UTC)


def summary_of(**signal_options: Any) -> dict[str, Any]:
    baseline = thresholds()
    signals = window_signals(**signal_options)
    return drift_summary(
        signals, judge(signals, baseline), baseline, model_name="fraud-detector",
        model_version="3", run_id="abc", computed_at=AT, duration_seconds=1.23456,
        window_size=200,
    )  # fmt: skip


def test_the_summary_holds_the_verdict_and_every_figure_against_its_threshold() -> None:
    summary = summary_of(drift=0.5)
    assert summary["model"] == {"name": "fraud-detector", "version": "3", "run_id": "abc"}
    assert summary["computed_at"] == "2025-01-02T03:04:05.678Z"
    assert summary["duration_seconds"] == 1.235
    assert summary["window"] == {"size": 200, "transactions": 200, "predictions": 200}
    assert summary["detected"] is True
    assert set(summary["signals"]) == set(SIGNALS) and summary["signals"]["features"] is True
    assert summary["reasons"] and summary["drift_share"] == 1.0
    assert summary["drift_share_threshold"] == 0.2
    assert summary["drifted_features"] == list(DRIFT_FEATURES)
    assert summary["prediction_drift"] == {"score": 0.1, "threshold": 0.3}
    assert summary["alert_rate"] == {
        "rate": 0.02, "expected": 0.01, "threshold": 0.05, "min_volume": 100,
    }  # fmt: skip
    assert list(summary["features"]) == list(DRIFT_FEATURES)
    assert summary["features"]["V1"] == {
        "drift_score": 0.5, "drift_threshold": 0.2, "out_of_range": 0.0,
        "out_of_range_threshold": 0.01, "top_value": 0.01, "top_value_threshold": 0.05,
    }  # fmt: skip
    json.dumps(summary, allow_nan=False)  # plain JSON


def test_a_window_without_predictions_has_null_prediction_figures() -> None:
    summary = summary_of(predictions=0, top=math.nan)
    assert summary["detected"] is False
    assert summary["prediction_drift"]["score"] is None
    assert summary["alert_rate"]["rate"] is None
    assert summary["features"]["V1"]["top_value"] is None
    json.dumps(summary, allow_nan=False)


def test_latest_run_answers_404_before_the_first_run() -> None:
    latest = LatestRun()
    status, body, content_type = latest.summary_response()
    assert (status, content_type) == (404, "application/json")
    assert "no drift run yet" in json.loads(body)["detail"]
    status, body, content_type = latest.report_response()
    assert status == 404 and content_type.startswith("text/plain")
    assert body.decode().count("\n") == 1 and body.startswith(b"no drift run yet")


def test_the_report_is_rendered_once_per_run_and_on_request() -> None:
    latest = LatestRun()
    run = drift_run(window_signals(), thresholds(), html="<html>first</html>")
    snapshot = run.snapshot
    assert isinstance(snapshot, FakeSnapshot)
    latest.publish(run, {"detected": False})
    assert snapshot.rendered == 0  # not until asked
    assert latest.report_response() == (200, b"<html>first</html>", "text/html; charset=utf-8")
    latest.report_response()
    assert snapshot.rendered == 1
    status, body, _ = latest.summary_response()
    assert status == 200 and json.loads(body) == {"detected": False}
    assert latest.summary == {"detected": False}

    second = drift_run(window_signals(), thresholds(), html="<html>second</html>")
    latest.publish(second, {"detected": True}, html="<html>already rendered</html>")
    assert latest.report_response()[1] == b"<html>already rendered</html>"
    assert isinstance(second.snapshot, FakeSnapshot) and second.snapshot.rendered == 0


def test_report_names_sort_by_time_and_name_the_version() -> None:
    assert report_stem(AT, "3") == "drift-20250102T030405.678Z-v3"
    later = report_stem(AT + dt.timedelta(milliseconds=1), "12")
    assert sorted([later, report_stem(AT, "3")])[-1] == later
    assert report_stem(AT, "../x") == "drift-20250102T030405.678Z-v.._x"
    local = AT.astimezone(dt.timezone(dt.timedelta(hours=2)))
    assert report_stem(local, "3") == report_stem(AT, "3")


def test_the_archive_keeps_the_newest_reports_with_their_summaries(tmp_path: Path) -> None:
    archive = ReportArchive(tmp_path / "reports" / "drift", keep=3)
    paths = [
        archive.save(f"<html>{i}</html>", {"i": i}, AT + dt.timedelta(seconds=i), "2")
        for i in range(5)
    ]
    assert all(p is not None for p in paths)
    kept = archive.stems()
    assert kept == [report_stem(AT + dt.timedelta(seconds=i), "2") for i in (2, 3, 4)]
    folder = archive.folder
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"{stem}{suffix}" for stem in kept for suffix in (".html", ".json")
    )
    assert json.loads((folder / f"{kept[-1]}.json").read_text()) == {"i": 4}
    assert (folder / f"{kept[-1]}.html").read_text() == "<html>4</html>"
    other = folder / "notes.txt"  # files the archive did not write stay
    other.write_text("mine")
    archive.save("<html>5</html>", {"i": 5}, AT + dt.timedelta(seconds=5), "2")
    assert other.exists() and len(archive.stems()) == 3


def test_keeping_none_writes_none(tmp_path: Path) -> None:
    archive = ReportArchive(tmp_path / "drift", keep=0)
    assert archive.save("<html/>", {}, AT, "1") is None
    assert not (tmp_path / "drift").exists()
