"""The bare client of `make bench-stream`: one Kafka client reading a topic, nothing else.

Run as its own small process (`python -m benchmarks.bare_consumer`), so its latencies carry no
pause of the benchmark's own, larger process. `--client` picks the library: librdkafka
(confluent-kafka, the scorer's) or kafka-python (the monitor's, and the scorer's before). It
takes every partition of the topic from its end, prints `ready`, then for each record notes the
milliseconds from the record's timestamp to its arrival; once it has `--count` records (or
after `--timeout` seconds) it writes them, one per line, to `--out`, and prints the CPU seconds
it spent from `ready` to the last record.

With `--forward TOPIC` (librdkafka only) it is also a bare consume-produce hop: each record's
source (partition, offset) goes to TOPIC, with the scorer's producer settings and one flush per
batch, as the scorer sends its predictions, but with no scoring at all.
"""

from __future__ import annotations

import argparse
import functools
import gc
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

CLIENTS = ("librdkafka", "kafka-python")
# What a reader returns per call: the timestamps (ms) of the records it received.
Reader = Callable[[], list[int]]


@contextmanager
def kafka_python(bootstrap: str, topic: str) -> Iterator[Reader]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
        client_id="bench-bare-consumer",
    )  # fmt: skip
    try:
        numbers = consumer.partitions_for_topic(topic) or set()
        partitions = [TopicPartition(topic, p) for p in sorted(numbers)]
        consumer.assign(partitions)
        consumer.seek_to_end(*partitions)
        for tp in partitions:
            consumer.position(tp)  # resolve the end now, before anything is sent

        def read() -> list[int]:
            batches = consumer.poll(timeout_ms=100).values()
            return [record.timestamp for batch in batches for record in batch]

        yield read
    finally:
        consumer.close()


@contextmanager
def librdkafka(bootstrap: str, topic: str, forward: str | None = None) -> Iterator[Reader]:
    import orjson
    from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap, "group.id": "bench-bare-consumer",
            "enable.auto.commit": False, "client.id": "bench-bare-consumer",
        }
    )  # fmt: skip
    try:
        numbers = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        # Each partition's end, resolved now, before anything is sent.
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), 30)[1] for p in numbers}
        consumer.assign([TopicPartition(topic, p, end) for p, end in sorted(ends.items())])
        failed: list[KafkaError] = []
        producer = None
        if forward is not None:
            producer = Producer(
                {
                    "bootstrap.servers": bootstrap, "client.id": "bench-bare-forward",
                    "acks": "all", "enable.idempotence": True, "linger.ms": 1,
                    "partitioner": "murmur2_random", "delivery.report.only.error": True,
                    "on_delivery": lambda error, _message: failed.append(error),
                }
            )  # fmt: skip
            producer.list_topics(forward, timeout=30)

        def read() -> list[int]:
            # As the scorer polls: wait for one message, then take what has arrived already.
            first = consumer.poll(0.1)
            if first is None:
                return []
            messages = [first, *consumer.consume(10_000, 0)]
            records = [m for m in messages if m.error() is None]
            if producer is not None and forward is not None:
                for m in records:
                    source = {"source": {"partition": m.partition(), "offset": m.offset()}}
                    producer.produce(forward, orjson.dumps(source), m.key(), m.partition() or 0)
                if producer.flush(10) or failed:
                    sys.exit(f"forwarding failed: {failed[0].str() if failed else 'no answer'}")
            return [m.timestamp()[1] for m in records]

        yield read
    finally:
        consumer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--client", choices=CLIENTS, default=CLIENTS[0])
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--timeout", type=float, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--forward", metavar="TOPIC", default=None)
    args = parser.parse_args()
    if args.forward and args.client != "librdkafka":
        parser.error("--forward needs --client librdkafka")
    reader = (
        functools.partial(librdkafka, forward=args.forward)
        if args.client == "librdkafka"
        else kafka_python
    )
    latencies: list[float] = []
    with reader(args.bootstrap, args.topic) as read:
        gc.freeze()  # as the scorer does after start-up
        print("ready", flush=True)
        cpu0 = time.process_time()
        deadline = time.monotonic() + args.timeout
        while len(latencies) < args.count and time.monotonic() < deadline:
            stamps = read()
            now_ms = time.time() * 1000.0
            latencies.extend(now_ms - stamp for stamp in stamps)
        # Before closing: the CPU this process spent reading, for the benchmark's report.
        print(f"cpu seconds from ready to the last record: {time.process_time() - cpu0:.3f}")
    args.out.write_text("".join(f"{value:.3f}\n" for value in latencies))
    if len(latencies) < args.count:
        sys.exit(f"received {len(latencies)} of {args.count} records in {args.timeout:.0f} s")


if __name__ == "__main__":
    main()
