"""Problem 7: each query's checkpoint is readable, fits the current query, and its Kafka offsets are retained.

A restart resumes exactly where the checkpoint says; these checks find, before a start, a checkpoint the job
could not resume from (and a lake table whose writing query's checkpoint is gone), each with its way out, instead of the
original stack's "fix": a random checkpoint directory that silently reprocesses or skips data.
"""

from __future__ import annotations

import json
from functools import partial
from urllib.parse import urlsplit

from sensorpipe.clients.kafka_client import KafkaError, watermarks
from sensorpipe.config import Settings
from sensorpipe.doctor.check import Check, CheckSpec, failed, passed, split_fix
from sensorpipe.stream.checkpoint_log import (
    CheckpointLog,
    OffsetEntry,
    UnreadableCheckpointError,
    entry_offsets,
    read_checkpoint,
    records_behind,
)
from sensorpipe.stream.checkpoints import (
    ACCEPT_THE_GAP,
    ORPHANED_TABLES_FIX,
    QUERIES,
    START_OVER,
    TABLE_WRITERS,
    CheckpointError,
    checkpoint_base,
    checkpoint_uri,
    lake_checkpoint_base,
    orphaned_tables,
    orphaned_tables_cause,
)

UNREADABLE_FIX = f"restore the checkpoint from a backup, or {START_OVER}"
OTHER_QUERY_FIX = f"run the sensorpipe version that wrote it, or {START_OVER}"


def checkpoint_specs(settings: Settings, by_service: dict[str, tuple[str, ...]]) -> list[CheckSpec]:
    """One check per query, after the storage its checkpoint is on (and, for the readings, the topic)."""
    base = checkpoint_base(settings)
    if base == lake_checkpoint_base(settings):
        storage: tuple[str, ...] = ("lake bucket",)  # beside the lake: a missing bucket is reported there
    elif urlsplit(base).scheme in {"s3", "s3a"}:
        storage = by_service.get("s3", ())
    else:
        storage = ()
    kafka = (*by_service.get("kafka", ()), f"topic {settings.kafka.topic}")

    def needs(query: str) -> tuple[str, ...]:
        # A query that writes a lake table is checked against that table too (agg_1m without its checkpoint).
        found = [
            *storage,
            *(kafka if query == "readings" else ()),
            *(["lake bucket"] if query in TABLE_WRITERS else []),
        ]
        return tuple(dict.fromkeys(found))

    return [
        CheckSpec(f"checkpoint {query}", partial(check_checkpoint, query), problem=7, needs=needs(query))
        for query in QUERIES
    ]


def check_checkpoint(query: str, settings: Settings) -> Check:
    name = f"checkpoint {query}"
    log = _read(name, query, settings)
    if isinstance(log, Check):
        return log
    if log is None or log.latest is None:
        first = (
            f"reads {settings.kafka.topic} from the earliest offset Kafka retains"
            if query == "readings"
            else "reads the lake's raw from its beginning"
        )
        started = "none yet: the first start" if log is None else "no batch yet: the first batch"
        return passed(name, f"{started} {first}")
    sources = len(log.latest.sources)
    if sources != 1:
        return failed(
            name, f"{log.uri} was written for a query with {sources} sources; this one has 1", OTHER_QUERY_FIX
        )
    if query == "readings":
        return _check_kafka(name, log, log.latest, settings)
    return _check_lake_source(name, log, log.latest)


def _read(name: str, query: str, settings: Settings) -> CheckpointLog | Check | None:
    """The checkpoint (None: none yet), or the check's result when it cannot be used as it is."""
    uri = checkpoint_uri(settings, query)
    try:
        log = read_checkpoint(settings, query)
        orphaned = orphaned_tables(settings) if query in TABLE_WRITERS else []
    except UnreadableCheckpointError as e:
        return failed(name, f"unreadable: {e}", UNREADABLE_FIX)
    except CheckpointError:
        return passed(name, f"not checked: doctor reads checkpoints on s3a:// and file:// only, not {uri}")
    except OSError as e:
        return failed(name, f"cannot read {uri} ({e})", "check stream.checkpoint_base and the rights on it")
    if orphaned:
        return failed(name, orphaned_tables_cause(settings, orphaned), ORPHANED_TABLES_FIX)
    return log


def _batch(log: CheckpointLog, latest: OffsetEntry) -> str:
    committed = log.committed is not None and log.committed >= latest.batch
    return f"batch {latest.batch}" + ("" if committed else " (not committed: a restart runs it again)")


def _check_lake_source(name: str, log: CheckpointLog, latest: OffsetEntry) -> Check:
    source = latest.sources[0]
    if source is None:
        return passed(name, f"{_batch(log, latest)}, before the lake's raw had a commit")
    found = json.loads(source)
    if not isinstance(found, dict) or not isinstance(found.get("reservoirVersion"), int):
        return failed(
            name, f"{log.uri} was written for another source than the lake's Delta table raw", OTHER_QUERY_FIX
        )
    return passed(name, f"{_batch(log, latest)}, up to version {found['reservoirVersion']} of the lake's raw")


def _check_kafka(name: str, log: CheckpointLog, latest: OffsetEntry, settings: Settings) -> Check:
    topic = settings.kafka.topic
    try:
        planned = entry_offsets(latest)
        start = entry_offsets(log.resume) if log.resume is not None else planned
    except UnreadableCheckpointError as e:
        return failed(name, f"{log.uri} was written for another source than Kafka ({e})", OTHER_QUERY_FIX)
    written_for = sorted(set(planned) | set(start))
    if written_for and written_for != [topic]:
        return failed(
            name,
            f"{log.uri} was written for topic {', '.join(written_for)}, the job now reads {topic}"
            " (kafka.topic changed since)",
            f"set kafka.topic back to {written_for[0]}, or {START_OVER}; or give {topic} a pipeline of its own"
            " (another stream.checkpoint_base and lake)",
        )
    try:
        marks = watermarks(settings.kafka, topic)
    except KafkaError as e:
        return failed(name, *split_fix(str(e)))
    if marks is None:
        return failed(name, f"Kafka has no topic {topic}", "`sensorpipe topics create`")
    return _retained(name, log, latest, planned.get(topic, {}), start.get(topic, {}), marks, settings)


def _retained(
    name: str,
    log: CheckpointLog,
    latest: OffsetEntry,
    planned: dict[int, int],
    start: dict[int, int],
    marks: dict[int, tuple[int, int]],
    settings: Settings,
) -> Check:
    """The offsets a restart reads from are still in Kafka, and none lies beyond its end."""
    topic = settings.kafka.topic
    gone_partitions = sorted(set(planned) - set(marks))
    if gone_partitions:
        return failed(
            name,
            f"{log.uri} reads partition(s) {', '.join(map(str, gone_partitions))} of {topic}, which now has"
            f" {len(marks)} (the topic was recreated with fewer since)",
            f"the job would stop on it: {START_OVER}",
        )
    ahead = {p: (offset, marks[p][1]) for p, offset in planned.items() if offset > marks[p][1]}
    if ahead:
        where = ", ".join(
            f"partition {p} at offset {offset}, its end {end}" for p, (offset, end) in sorted(ahead.items())
        )
        return failed(
            name,
            f"{log.uri} is past the end of {topic} ({where}): the topic was deleted and recreated, or truncated",
            f"the job would stop on it (or skip readings): if the topic was recreated on purpose, {START_OVER};"
            " otherwise point kafka.bootstrap_servers back at the cluster that holds it",
        )
    behind = {p: (offset, marks[p][0]) for p, offset in start.items() if 0 <= offset < marks[p][0]}
    if behind:
        gone = sum(low - offset for offset, low in behind.values())
        where = ", ".join(
            f"partition {p} at {offset}, retained from {low}" for p, (offset, low) in sorted(behind.items())
        )
        return failed(
            name,
            f"{log.uri} resumes {topic} at offsets Kafka no longer retains ({where}): {gone} record(s) deleted"
            " by retention before the job read them",
            ACCEPT_THE_GAP,
        )
    lag = records_behind(start, marks)
    return passed(name, f"{_batch(log, latest)}, offsets of {topic} retained, {lag} record(s) behind")


__all__ = ["check_checkpoint", "checkpoint_specs"]
