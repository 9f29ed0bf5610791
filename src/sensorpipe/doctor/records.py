"""Problem 4: the records on `kafka.topic` are raw JSON, as `sensorpipe bridge` writes them, not wrapped.

In the hand-built stack a Kafka Connect MQTT source connector put the payloads on the topic as base64
(its converter's rendering of bytes). The stream job decodes every wrapping it knows, per record, so
wrapped records are no data loss; but they mean something other than the bridge feeds the topic, with
its own guarantees (or none), and that is what this check reports. It reads the latest records of every
partition as a guest (assigned partitions, a group id of its own, no commits), so no consumer group moves.
A few records that are not JSON are sensor data errors, dead-lettered by the stream job: not a failure here.
Each record is read by the data contract's reference decoder, as the stream job would read it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

from confluent_kafka import KafkaError as RdKafkaError
from confluent_kafka import TopicPartition

from sensorpipe.clients.kafka_client import KafkaError, watermarks
from sensorpipe.config import KafkaSettings, Settings
from sensorpipe.contract.encodings import WRAPPED
from sensorpipe.contract.headers import HEADER_TOPIC
from sensorpipe.contract.reference import Record, Rules, decode
from sensorpipe.doctor.check import Check, failed, passed, split_fix
from sensorpipe.monitoring.tail import KafkaRecord, guest_consumer, kafka_record, missing_topic

SAMPLE = 200
"""How many of the latest records to look at, across partitions."""
READ_FOR_S = 5.0
CONVERTER = "org.apache.kafka.connect.converters.ByteArrayConverter"
"""Kafka Connect's converter that passes bytes through untouched (Apache Kafka ≥ 0.11, KIP-128)."""
WRAPPED_FIX = (
    "make that producer pass the payload bytes through (a Kafka Connect MQTT source connector:"
    f" value.converter={CONVERTER}) or publish through `sensorpipe bridge`"
)
NOT_JSON_FIX = (
    f"find that producer (`sensorpipe tail kafka` shows records with their headers: the bridge's carry {HEADER_TOPIC})"
    " and stop it or give it a topic of its own; the stream job dead-letters every such record"
)


def spread(budget: int, available: Sequence[int]) -> list[int]:
    """How many of the latest records to take from each partition: `budget` in all, as evenly as they allow."""
    take = [0] * len(available)
    left = budget
    open_ = [i for i, count in enumerate(available) if count > 0]
    while left > 0 and open_:
        share = max(1, left // len(open_))
        for i in list(open_):
            step = min(share, available[i] - take[i], left)
            take[i] += step
            left -= step
            if take[i] == available[i]:
                open_.remove(i)
            if left == 0:
                break
    return take


def latest_records(settings: KafkaSettings, topic: str, count: int, timeout_s: float) -> list[KafkaRecord]:
    """Up to `count` of the latest records of `topic`, spread over its partitions: what arrives within `timeout_s`."""
    ends = watermarks(settings, topic)
    if ends is None:
        raise KafkaError(missing_topic(settings, topic))
    partitions = sorted(ends)
    takes = spread(count, [ends[p][1] - ends[p][0] for p in partitions])
    starts = {p: ends[p][1] - take for p, take in zip(partitions, takes, strict=True) if take > 0}
    if not starts:
        return []
    consumer = guest_consumer(settings, "sensorpipe-doctor", **{"enable.partition.eof": True, "log_level": 0})
    records: list[KafkaRecord] = []
    pending = set(starts)
    deadline = time.monotonic() + timeout_s
    try:
        consumer.assign([TopicPartition(topic, p, offset) for p, offset in starts.items()])
        while pending and (left := deadline - time.monotonic()) > 0:
            for message in consumer.consume(500, timeout=min(left, 0.5)):
                error = message.error()
                if error is None:
                    record = kafka_record(message)
                    end = ends[record.partition][1]
                    if record.offset < end:
                        records.append(record)
                    if record.offset >= end - 1:
                        pending.discard(record.partition)
                elif error.code() == RdKafkaError._PARTITION_EOF:
                    pending.discard(message.partition() or 0)
                elif error.fatal() or error.code() == RdKafkaError.UNKNOWN_TOPIC_OR_PART:
                    raise KafkaError(
                        f"Kafka at {settings.bootstrap_servers} stopped serving {topic} ({error.str()}):"
                        " check the broker's log, then run doctor again"
                    )
    finally:
        consumer.close()
    return records


def _where(record: KafkaRecord) -> str:
    return f"{record.topic}[{record.partition}]@{record.offset}"


def _decoded(record: KafkaRecord, rules: Rules) -> tuple[str, bool]:
    """(encoding, unwrapped) of a record as the stream job decodes it."""
    found = decode(
        Record(
            value=record.payload,
            timestamp=record.timestamp or datetime.now(UTC),
            headers=record.headers,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        ),
        rules,
    )
    return found.encoding, found.unwrapped


def judge(name: str, topic: str, records: Sequence[KafkaRecord], rules: Rules) -> Check:
    """✓ for raw JSON (and a few records that are not JSON), ✗ for wrapped records or mostly not JSON."""
    wrapped: Counter[str] = Counter()
    raw = 0
    first_wrapped: KafkaRecord | None = None
    not_json: list[KafkaRecord] = []
    for record in records:
        encoding, unwrapped = _decoded(record, rules)
        if not unwrapped:
            not_json.append(record)
        elif encoding in WRAPPED:
            wrapped[encoding] += 1
            first_wrapped = first_wrapped or record
        else:
            raw += 1
    parts = []
    if wrapped:
        kinds = ", ".join(f"{n} {encoding}" for encoding, n in sorted(wrapped.items(), key=lambda kv: (-kv[1], kv[0])))
        assert first_wrapped is not None
        parts.append(f"{wrapped.total()} wrapped ({kinds}; e.g. {_where(first_wrapped)})")
    if raw or not parts:
        parts.append(f"{raw} raw JSON")
    if not_json:
        parts.append(f"{len(not_json)} not JSON")
    summary = f"{len(records)} recent record(s): {', '.join(parts)}"
    mostly_not_json = len(not_json) * 2 > len(records)
    if not wrapped and not mostly_not_json:
        return passed(name, summary + (" (dead-lettered by the stream job)" if not_json else ""))
    causes, fixes = [], []
    if wrapped:
        causes.append("something other than `sensorpipe bridge` writes wrapped payloads (the stream job decodes them)")
        fixes.append(WRAPPED_FIX)
    if mostly_not_json:
        causes.append(f"another producer writes records that are not JSON to {topic} (e.g. {_where(not_json[0])})")
        fixes.append(NOT_JSON_FIX)
    return failed(name, f"{summary}: {'; '.join(causes)}", "; ".join(fixes))


def check_records(settings: Settings) -> Check:
    topic = settings.kafka.topic
    name = f"records {topic}"
    try:
        records = latest_records(settings.kafka, topic, SAMPLE, READ_FOR_S)
    except KafkaError as e:
        cause, fix = split_fix(str(e))
        return failed(name, cause, fix)
    if not records:
        return passed(name, f"no records yet on {topic}")
    return judge(name, topic, records, Rules.from_settings(settings))


__all__ = ["CONVERTER", "check_records", "judge", "latest_records", "spread"]
