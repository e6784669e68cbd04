"""The label join's memory under a stream whose labels never come: `make bench-live`.

Feeds 1,000,000 production predictions, and no label, through the drift monitor's live reader
(monitoring.live.LiveMonitor.take, the code the monitor runs on each polled batch, with
prediction records as kafka-python gives them) and samples the process's RSS every 100,000.
The join holds at most FRAUD_MONITOR_LIVE_MAX_PENDING transactions (default 200,000); past that
the oldest count as legitimate early, so the RSS must level off there, growing afterwards only
by the 5 bytes per resolved transaction the since-start figures keep. Writes
reports/bench/live.json.
"""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from prometheus_client import CollectorRegistry
from rich.progress import Progress

from infra.settings import MonitorSettings
from monitoring.live import LiveMetrics, LiveMonitor
from serving.messages import encode_prediction

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "reports/bench/live.json"
BATCH = 5_000  # records per poll, as the live reader asks for


class Record(NamedTuple):
    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes
    value: bytes


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def batches(topic: str, total: int) -> Iterator[list[Record]]:
    """Predictions one millisecond apart, as the scorer writes them."""
    for start in range(0, total, BATCH):
        batch = []
        for n in range(start, min(start + BATCH, total)):
            tx_id = f"tx-bench-{n:08d}"
            value = encode_prediction(
                transaction_id=tx_id, probability=(n % 997) / 997, threshold=0.6,
                model_name="fraud-detector", model_version="1",
                scored_at="2026-12-01T00:00:00.000Z", topic="transactions", partition=0, offset=n,
            )  # fmt: skip
            batch.append(Record(topic, 0, n, 1_764_547_200_000 + n, tx_id.encode(), value))
        yield batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=1_000_000)
    args = parser.parse_args()
    settings = MonitorSettings()
    reader = LiveMonitor(
        settings, LiveMetrics(CollectorRegistry()), lambda version: None, threading.Event()
    )
    samples = [{"transactions": 0, "rss_mb": round(rss_mb(), 1), "pending": 0}]
    with Progress() as bar:
        task = bar.add_task("unlabelled predictions", total=args.transactions)
        fed = 0
        for batch in batches(settings.topic_predictions, args.transactions):
            reader.take(batch)
            fed += len(batch)
            bar.advance(task, len(batch))
            if fed % 100_000 == 0:
                samples.append(
                    {"transactions": fed, "rss_mb": round(rss_mb(), 1), "pending": len(reader.join)}
                )
    reader.export()
    start, bound, end = samples[0]["rss_mb"], samples[2]["rss_mb"], samples[-1]["rss_mb"]
    report = {
        "transactions": args.transactions,
        "max_pending": settings.monitor_live_max_pending,
        "samples": samples,
        "rss_growth_mb_first_200k": round(bound - start, 1),
        "rss_growth_mb_after_200k": round(end - bound, 1),
        "resolved_early": reader.join.counts["evicted"],
        "resolved_transactions": sum(len(p) for p in reader.models.values()),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    for sample in samples:
        print(
            f"{sample['transactions']:>9,} unlabelled: RSS {sample['rss_mb']:7.1f} MB, "
            f"{sample['pending']:>7,} waiting for a label"
        )
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
