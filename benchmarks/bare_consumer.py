"""The bare client of `make bench-stream`: kafka-python reading a topic, nothing else.

Run as its own small process (`python -m benchmarks.bare_consumer`), so its latencies carry no
pause of the benchmark's own, larger process. It takes every partition of the topic from its
end, prints `ready`, then for each record notes the milliseconds from the record's timestamp
to its arrival; once it has `--count` records (or after `--timeout` seconds) it writes them,
one per line, to `--out`, and prints the CPU seconds it spent from `ready` to the last record.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--timeout", type=float, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    consumer = KafkaConsumer(
        bootstrap_servers=args.bootstrap, group_id=None, enable_auto_commit=False,
        client_id="bench-bare-consumer",
    )  # fmt: skip
    latencies: list[float] = []
    try:
        numbers = consumer.partitions_for_topic(args.topic) or set()
        partitions = [TopicPartition(args.topic, p) for p in sorted(numbers)]
        consumer.assign(partitions)
        consumer.seek_to_end(*partitions)
        for tp in partitions:
            consumer.position(tp)  # resolve the end now, before anything is sent
        gc.freeze()  # as the scorer does after start-up
        print("ready", flush=True)
        cpu0 = time.process_time()
        deadline = time.monotonic() + args.timeout
        while len(latencies) < args.count and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=100).values():
                now_ms = time.time() * 1000.0
                latencies.extend(now_ms - record.timestamp for record in batch)
        # Before closing: the CPU this process spent reading, for the benchmark's report.
        print(f"cpu seconds from ready to the last record: {time.process_time() - cpu0:.3f}")
    finally:
        consumer.close()
    args.out.write_text("".join(f"{value:.3f}\n" for value in latencies))
    if len(latencies) < args.count:
        sys.exit(f"received {len(latencies)} of {args.count} records in {args.timeout:.0f} s")


if __name__ == "__main__":
    main()
