"""Benchmark the drift monitor: `make bench-monitor`.

Offline, with the monitor's own computation (monitoring.drift.compute) and the pipeline's
baseline (data/baseline, the one logged to the model's run):

- plain: every window of the test split (normal traffic the model never saw, time-ordered,
  `window_size` rows every `run_every`); the alarm must stay down in all of them;
- shifted: the test split's first window as it is, then the same rows with a shift applied;
  the alarm must be raised within 30,000 shifted transactions. Shifts: the model's most
  important feature stuck at 0, V14's mean moved by one standard deviation, five times the share
  of fraud-like transactions, Amount scaled by growing factors (the smallest caught is the
  measured detection power) and V14's sign flipped.

Live, with a broker of its own (`--live`, on by default): the scorer's end-to-end p99 at
2,000 tx/s without and with `fraud monitor` running on the same topics, side by side in each run;
the monitor's share of the scorer's drain it kept (sampled ratio), its memory, and whether its
verdict on the last window equals the offline one. Writes reports/bench/monitor.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fraud.drift import DRIFT_FEATURES, FLAG_COLUMN, SCORE_COLUMN, window_starts
from fraud.schema import AMOUNT_COLUMN, FEATURE_COLUMNS, LABEL_COLUMN, TIME_COLUMN
from infra.paths import BASELINE_DIR, METRICS_FILE, MODEL_FILE, TEST_SPLIT_FILE
from monitoring.drift import DriftBaseline, DriftRun, compute
from tests import harness

ROOT = harness.ROOT
OUT = ROOT / "reports/bench/monitor.json"
DETECT_WITHIN = 30_000  # shifted transactions
AMOUNT_FACTORS = (1.1, 1.2, 1.3, 1.5, 2.0, 3.0)
FRAUD_SHARE_FACTOR = 5.0
TARGET_P99_RATIO = 1.2
console = harness.console

Shift = Callable[[pd.DataFrame, np.random.Generator], pd.DataFrame]


@dataclass
class Offline:
    baseline: DriftBaseline
    test: pd.DataFrame
    score: Callable[[pd.DataFrame], np.ndarray]
    threshold: float
    important: str  # the model's most important feature
    seconds: list[float]

    def run(self, transactions: pd.DataFrame) -> DriftRun:
        t = self.baseline.thresholds
        probabilities = self.score(transactions)
        predictions = pd.DataFrame(
            {SCORE_COLUMN: probabilities, FLAG_COLUMN: probabilities >= self.threshold}
        )
        started = time.perf_counter()
        result = compute(
            self.baseline.reference, transactions, predictions, seed=t.seed, baseline=t
        )
        self.seconds.append(time.perf_counter() - started)
        return result


def window_row(start: int, result: DriftRun, baseline: DriftBaseline) -> dict[str, Any]:
    assert result.verdict is not None
    features = baseline.thresholds.features
    severity = {
        name: result.signals.features[name].drift_score / features[name].drift_threshold
        for name in DRIFT_FEATURES
    }
    worst = max(severity, key=lambda name: severity[name])
    return {
        "start": start,
        "detected": result.verdict.detected,
        "signals": [name for name, raised in result.verdict.signals.items() if raised],
        "drift_share": round(result.verdict.drift_share, 4),
        "features_over_threshold": list(result.verdict.drifted_features),
        "worst_feature": worst,
        "worst_feature_times_threshold": round(severity[worst], 3),
        "prediction_drift_times_threshold": round(
            (result.signals.prediction_drift or 0.0)
            / baseline.thresholds.prediction_drift_threshold,
            3,
        ),
        "alert_rate": result.signals.alert_rate,
    }


def plain(offline: Offline, progress: Any) -> dict[str, Any]:
    t = offline.baseline.thresholds
    starts = window_starts(len(offline.test), t.window_size, t.run_every)
    task = progress.add_task("test split, plain windows", total=len(starts))
    rows = []
    for start in starts:
        result = offline.run(offline.test.iloc[start : start + t.window_size])
        rows.append(window_row(start, result, offline.baseline))
        progress.advance(task)
    return {
        "windows": len(rows),
        "alarm_windows": sum(r["detected"] for r in rows),
        "windows_with_a_feature_over_threshold": sum(bool(r["drift_share"]) for r in rows),
        "max_drift_share": max(r["drift_share"] for r in rows),
        "max_feature_times_threshold": max(r["worst_feature_times_threshold"] for r in rows),
        "max_prediction_drift_times_threshold": max(
            r["prediction_drift_times_threshold"] for r in rows
        ),
        "max_alert_rate": max(r["alert_rate"] for r in rows),
        "per_window": rows,
    }


def shifted(offline: Offline, shift: Shift, label: str, progress: Any) -> dict[str, Any]:
    """Windows over the first normal window followed by shifted rows, every `run_every` rows,
    until the alarm: how many shifted transactions it took (None: not within DETECT_WITHIN)."""
    t = offline.baseline.thresholds
    size, step = t.window_size, t.run_every
    normal = offline.test.iloc[:size]
    changed = shift(
        offline.test.iloc[size : size + DETECT_WITHIN].reset_index(drop=True),
        np.random.default_rng(t.seed),
    )
    stream = pd.concat([normal, changed], ignore_index=True)
    task = progress.add_task(f"shifted: {label}", total=DETECT_WITHIN // step)
    try:
        for seen in range(step, len(changed) + 1, step):
            end = size + seen
            result = offline.run(stream.iloc[end - size : end])
            progress.advance(task)
            if result.verdict is not None and result.verdict.detected:
                row = window_row(end - size, result, offline.baseline)
                return {"detected_after": seen, "signals": row["signals"], "window": row}
    finally:
        progress.remove_task(task)
    return {"detected_after": None}


def stuck(feature: str) -> Shift:
    return lambda frame, _rng: frame.assign(**{feature: 0.0})


def mean_shift(feature: str, by: float) -> Shift:
    return lambda frame, _rng: frame.assign(**{feature: frame[feature] + by})


def scaled_amount(factor: float) -> Shift:
    return lambda frame, _rng: frame.assign(**{AMOUNT_COLUMN: frame[AMOUNT_COLUMN] * factor})


def sign_flip(feature: str) -> Shift:
    return lambda frame, _rng: frame.assign(**{feature: -frame[feature]})


def more_fraud(frauds: pd.DataFrame, factor: float) -> Shift:
    """Legitimate rows replaced by the test split's frauds (drawn with replacement, keeping the
    replaced row's Time) until the fraud share is `factor` times what it was."""

    def apply(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        frame = frame.copy()
        legit = np.flatnonzero(frame[LABEL_COLUMN].to_numpy() == 0)
        extra = round(int(frame[LABEL_COLUMN].sum()) * (factor - 1))
        rows = rng.choice(legit, size=extra, replace=False)
        drawn = frauds.iloc[rng.integers(0, len(frauds), size=extra)]
        columns = [c for c in frame.columns if c != TIME_COLUMN]
        frame.loc[rows, columns] = drawn[columns].to_numpy()
        return frame

    return apply


def most_important_feature(booster: Any) -> str:
    gains: dict[str, float] = booster.get_score(importance_type="total_gain")
    return max(gains, key=lambda name: gains[name])


def load_offline() -> Offline:
    import xgboost as xgb

    baseline = DriftBaseline.load(ROOT / BASELINE_DIR)
    booster = xgb.Booster()
    booster.load_model(ROOT / MODEL_FILE)
    threshold = float(json.loads((ROOT / METRICS_FILE).read_text())["threshold"])
    test = pd.read_parquet(ROOT / TEST_SPLIT_FILE)
    test = test.sort_values(TIME_COLUMN, kind="stable").reset_index(drop=True)

    def score(frame: pd.DataFrame) -> np.ndarray:
        matrix = frame.loc[:, list(FEATURE_COLUMNS)].to_numpy(np.float32)
        return np.asarray(booster.inplace_predict(matrix), dtype=np.float64)

    important = most_important_feature(booster)
    return Offline(baseline, test, score, threshold, important, [])


def measure_offline(offline: Offline, progress: Any) -> dict[str, Any]:
    baseline, test, important = offline.baseline, offline.test, offline.important
    v14_sd = float(baseline.reference["V14"].std())
    frauds = test[test[LABEL_COLUMN] == 1]
    scenarios: dict[str, Shift] = {
        f"{important} stuck at 0 (the model's most important feature)": stuck(important),
        "V14 mean + 1 sd": mean_shift("V14", v14_sd),
        f"fraud-like share x{FRAUD_SHARE_FACTOR:g}": more_fraud(frauds, FRAUD_SHARE_FACTOR),
        "V14 sign flipped": sign_flip("V14"),
    }
    results: dict[str, Any] = {"plain": plain(offline, progress), "shifted": {}}
    for label, shift in scenarios.items():
        results["shifted"][label] = shifted(offline, shift, label, progress)
    amounts: dict[str, Any] = {}
    for factor in AMOUNT_FACTORS:
        amounts[f"{factor:g}"] = shifted(
            offline, scaled_amount(factor), f"Amount x{factor:g}", progress
        )
    caught = [float(f) for f, r in amounts.items() if r["detected_after"] is not None]
    results["amount_scale"] = {
        "factors": amounts,
        "smallest_factor_caught": min(caught) if caught else None,
    }
    results["seconds_per_computation"] = {
        "median": round(statistics.median(offline.seconds), 3),
        "max": round(max(offline.seconds), 3),
        "computations": len(offline.seconds),
    }
    results["window_size"] = baseline.thresholds.window_size
    results["run_every"] = baseline.thresholds.run_every
    results["most_important_feature"] = important
    return results


# -- live: the monitor beside the scorer on a broker of its own ---------------------------------

FLOOD_MESSAGES = 200_000
CATCH_UP_TIMEOUT = 180.0


def monitor_consumed(monitor: harness.Monitor) -> float:
    return harness.sample_total(monitor.samples(), "fraud_monitor_transactions_total")


def keeps_up(bench: Any, label: str) -> dict[str, Any]:
    """Transactions sent as fast as replay can while the scorer and the monitor run: does the
    monitor read them all, or skip ahead (and say so in fraud_monitor_sampled_ratio)?"""
    topics = bench.topics(label)
    monitor = bench.start_monitor(topics, label)
    cpu0 = harness.cpu_seconds(monitor.pid)
    scorers = bench.start_scorers(topics, 1, label)
    try:
        bench.wait_ready(scorers)
        started = time.perf_counter()
        sent_seconds = bench.preload(topics, FLOOD_MESSAGES, label)
        harness.wait_until(
            lambda: scorers[0].metric("fraud_transactions_consumed_total") >= FLOOD_MESSAGES,
            CATCH_UP_TIMEOUT, "the scorer's drain",
        )  # fmt: skip
        drained = time.perf_counter() - started
        harness.wait_until(
            lambda: monitor_consumed(monitor) >= FLOOD_MESSAGES, CATCH_UP_TIMEOUT,
            "the monitor reading every transaction (read or skipped)",
        )  # fmt: skip
        caught_up = time.perf_counter() - started
        view = bench.monitor_view(monitor, cpu0)
    finally:
        bench.stop_scorers(scorers)
        bench.stop_monitor(monitor)
    return {
        "transactions": FLOOD_MESSAGES,
        "replay_seconds": round(sent_seconds, 2),
        "scorer_drained_after_seconds": round(drained, 2),
        "monitor_done_after_seconds": round(caught_up, 2),
        "monitor_tps": round(FLOOD_MESSAGES / caught_up, 1),
        "monitor": view,
    }


def same_verdict(bench: Any, offline: Offline, frame: pd.DataFrame, label: str) -> dict[str, Any]:
    """One window replayed through the real scorer to the real monitor; its /v1/drift against
    the offline computation on the same rows."""
    size = len(frame)
    source = bench.logs / f"{label}.parquet"
    frame.to_parquet(source, index=False)
    topics = bench.topics(label)
    monitor = bench.start_monitor(topics, label)
    scorers = bench.start_scorers(topics, 1, label)
    try:
        bench.wait_ready(scorers)
        from serving.replay import replay

        replay(source, settings=harness.kafka_settings(topics))

        def covered() -> bool:
            summary = monitor.drift()
            return (
                bool(summary)
                and summary["window"]["transactions"] == size
                and (summary["window"]["predictions"] == size)
            )

        harness.wait_until(covered, CATCH_UP_TIMEOUT, f"a drift run over the {size:,} rows")
        online = monitor.drift()
    finally:
        bench.stop_scorers(scorers)
        bench.stop_monitor(monitor)
    assert online is not None
    local = offline.run(frame)
    assert local.verdict is not None
    differences = {
        name: abs(
            online["features"][name]["drift_score"] - local.signals.features[name].drift_score
        )
        for name in DRIFT_FEATURES
    }
    return {
        "rows": size,
        "online_detected": online["detected"],
        "offline_detected": local.verdict.detected,
        "online_signals": online["signals"],
        "offline_signals": local.verdict.signals,
        "max_feature_score_difference": max(differences.values()),
        "same": online["detected"] == local.verdict.detected
        and online["signals"] == local.verdict.signals,
    }


def measure_live(
    offline: Offline, workdir: Path, logs: Path, runs: int, progress: Any
) -> dict[str, Any]:
    from benchmarks.bench_stream import Bench

    model = harness.ModelChoice.choose()
    broker = harness.KafkaBroker.on_free_ports(workdir / "kafka")
    bench = Bench(broker.bootstrap, 0, model, logs, progress)
    result: dict[str, Any] = {
        "model": {"name": model.name, "alias": model.alias, "version": model.version}
    }
    try:
        bench.broker_pid = broker.start(timeout=120.0).pid
        size = offline.baseline.thresholds.window_size
        important = offline.important
        result["same_verdict"] = {
            "plain": same_verdict(bench, offline, offline.test.iloc[:size], "same-plain"),
            "stuck": same_verdict(
                bench, offline, offline.test.iloc[:size].assign(**{important: 0.0}), "same-stuck"
            ),
        }
        pairs = []
        for number in range(1, runs + 1):
            order = (False, True) if number % 2 else (True, False)
            pair = {
                with_monitor: bench.latency(
                    f"r{number}-{'with' if with_monitor else 'without'}-monitor", with_monitor
                )
                for with_monitor in order
            }
            without, with_ = pair[False]["all"]["p99_ms"], pair[True]["all"]["p99_ms"]
            pairs.append({
                "run": number, "p99_ms_without_monitor": without, "p99_ms_with_monitor": with_,
                "ratio": round(with_ / without, 3), "monitor": pair[True]["monitor"],
                "achieved_rates": [pair[m]["achieved_offered_rate"] for m in (False, True)],
            })  # fmt: skip
            console.print(f"run {number}: p99 {without} ms without the monitor, {with_} ms with it")
        result["latency_pairs"] = pairs
        result["keeps_up"] = keeps_up(bench, "flood")
    finally:
        for service in (*bench.scorers, *bench.monitors):
            service.terminate()
        broker.stop()
    return result


def targets(report: dict[str, Any]) -> dict[str, Any]:
    plain, shifted = report["offline"]["plain"], report["offline"]["shifted"]
    live = report.get("live", {})
    required = [k for k in shifted if "sign flipped" not in k]
    goals: dict[str, Any] = {
        "no_alarm_on_test_split": {
            "target": "0 windows", "measured": plain["alarm_windows"],
            "single_feature_over_threshold_windows": plain["windows_with_a_feature_over_threshold"],
            "met": plain["alarm_windows"] == 0,
        },
        "detected_within": {
            "target": f"<= {DETECT_WITHIN:,} shifted transactions each",
            "measured": {k: shifted[k]["detected_after"] for k in required},
            "met": all(shifted[k]["detected_after"] is not None for k in required),
        },
    }  # fmt: skip
    if live:
        ratio = statistics.median(p["ratio"] for p in live["latency_pairs"])
        goals["scorer_p99_with_monitor"] = {
            "target": f"<= {TARGET_P99_RATIO}x without", "measured": round(ratio, 3),
            "met": ratio <= TARGET_P99_RATIO,
        }  # fmt: skip
        same = live["same_verdict"]
        goals["online_equals_offline"] = {
            "target": "same verdict and signals",
            "measured": {k: v["same"] for k, v in same.items()},
            "met": all(v["same"] for v in same.values()),
        }  # fmt: skip
        flood = live["keeps_up"]["monitor"]
        goals["keeps_up_or_samples"] = {
            "target": "reads every transaction, or exports the share it sampled",
            "measured": flood["sampled_ratio"],
            "met": flood["transactions_windowed"] + flood["transactions_skipped"] >= FLOOD_MESSAGES,
        }  # fmt: skip
    return goals


def medians(report: dict[str, Any]) -> dict[str, Any]:
    offline = report["offline"]
    plain, flipped = offline["plain"], offline["shifted"]["V14 sign flipped"]
    figures: dict[str, Any] = {
        "alarm_windows_test_split": offline["plain"]["alarm_windows"],
        "windows_with_a_feature_over_threshold": plain["windows_with_a_feature_over_threshold"],
        "seconds_per_drift_computation": offline["seconds_per_computation"]["median"],
        "smallest_amount_factor_caught": offline["amount_scale"]["smallest_factor_caught"],
        "v14_sign_flip_caught": flipped["detected_after"] is not None,
    }  # fmt: skip
    for label, result in offline["shifted"].items():
        figures[f"detected_after: {label}"] = result["detected_after"]
    if live := report.get("live"):
        pairs = live["latency_pairs"]
        figures["scorer_p99_ms_without_monitor"] = harness.median(
            p["p99_ms_without_monitor"] for p in pairs
        )
        figures["scorer_p99_ms_with_monitor"] = harness.median(
            p["p99_ms_with_monitor"] for p in pairs
        )
        figures["p99_ratio_with_over_without"] = harness.median(p["ratio"] for p in pairs)
        figures["monitor_peak_rss_mb"] = max(p["monitor"]["peak_rss_mb"] for p in pairs)
        flood = live["keeps_up"]
        figures["flood_monitor_sampled_ratio"] = flood["monitor"]["sampled_ratio"]
        figures["flood_scorer_drained_after_seconds"] = flood["scorer_drained_after_seconds"]
        figures["flood_monitor_done_after_seconds"] = flood["monitor_done_after_seconds"]
    return figures


def measure(args: argparse.Namespace, workdir: Path, logs: Path) -> dict[str, Any]:
    offline = load_offline()
    report: dict[str, Any] = {
        "benchmark": "drift monitor: the alarm over the test split, plain and shifted; "
        "the monitor beside the scorer",
        "settings": {
            "runs": args.runs,
            "live": args.live,
            "detect_within": DETECT_WITHIN,
            "window_size": offline.baseline.thresholds.window_size,
            "run_every": offline.baseline.thresholds.run_every,
            "rule": dataclasses.asdict(offline.baseline.thresholds.rule),
            "source": str(TEST_SPLIT_FILE),
        },
        "notes": "benchmarks/README.md",
    }
    with harness.progress_bars() as progress:
        report["offline"] = measure_offline(offline, progress)
        if args.live:
            report["live"] = measure_live(offline, workdir, logs, args.runs, progress)
    report["medians"] = medians(report)
    report["targets"] = targets(report)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="Latency pairs (median is kept).")
    parser.add_argument(
        "--no-live", dest="live", action="store_false",
        help="Only the offline windows (no broker, scorer or monitor).",
    )  # fmt: skip
    parser.add_argument(
        "--log-dir", type=Path, default=None,
        help="Keep the services' logs here (default: a temporary directory, removed).",
    )  # fmt: skip
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    harness.run_benchmark(
        OUT, ROOT / BASELINE_DIR / "baseline.json", args.log_dir,
        lambda workdir, logs: measure(args, workdir, logs),
    )  # fmt: skip


if __name__ == "__main__":
    main()
