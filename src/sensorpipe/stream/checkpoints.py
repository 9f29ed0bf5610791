"""Where the stream job's queries keep their checkpoints, resetting them on purpose, and explaining them.

The original stack "fixed" broken restarts with a random checkpoint directory per start, which silently
reprocesses or skips data (problem 7). Here every query has one stable checkpoint under one base
(`stream.checkpoint_base`, by default `<lake root>/_checkpoints/<query>`), deleting it is an explicit,
logged `--reset`, and a checkpoint that no longer fits the query is reported with the two ways out.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import pyarrow.fs as pafs

from sensorpipe.config import Settings
from sensorpipe.errors import SensorpipeError
from sensorpipe.storage.lake import AGG_1M, RAW, Dataset, dataset_uri, lake_filesystem
from sensorpipe.storage.s3 import delete_prefix

logger = logging.getLogger(__name__)

QUERIES = ("readings", "aggregates", "aggregates_lake")
"""The job's streaming queries; a query's name is also its checkpoint directory, so never rename one."""

FILE_SINKS: dict[str, Dataset] = {"readings": RAW, "aggregates_lake": AGG_1M}
"""Queries writing a lake dataset with a file sink log (`<dataset>/_spark_metadata`) that goes with their checkpoint."""


class CheckpointError(SensorpipeError):
    """A checkpoint cannot be used or removed; the message names the cause and the ways out."""


def checkpoint_base(settings: Settings) -> str:
    """The URI under which every query has its checkpoint directory."""
    base = settings.stream.checkpoint_base or f"{settings.lake_uri.rstrip('/')}/_checkpoints"
    return base.rstrip("/")


def checkpoint_uri(settings: Settings, query: str) -> str:
    if query not in QUERIES:
        raise ValueError(f"unknown query {query!r}; the job's queries are {', '.join(QUERIES)}")
    return f"{checkpoint_base(settings)}/{query}"


def checkpoint_filesystem(settings: Settings, uri: str) -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem and path of a checkpoint URI: S3 through `[s3]`, or a local directory."""
    parts = urlsplit(uri)
    if parts.scheme in {"s3a", "s3"}:
        s3_settings = settings.model_copy(update={"lake": settings.lake.model_copy(update={"backend": "s3"})})
        return lake_filesystem(s3_settings), unquote(f"{parts.netloc}{parts.path}")
    if parts.scheme == "file":
        return pafs.LocalFileSystem(), unquote(parts.path)
    raise CheckpointError(
        f"sensorpipe cannot manage checkpoints at {uri} ({parts.scheme or 'no scheme'}): delete that directory"
        " with your storage's own tools, or point stream.checkpoint_base at s3a:// or file://"
    )


@dataclass(frozen=True)
class Checkpoint:
    query: str
    uri: str
    exists: bool


def checkpoints(settings: Settings) -> list[Checkpoint]:
    """Each query's checkpoint and whether it holds anything (a query that never ran has none)."""
    found = []
    for query in QUERIES:
        uri = checkpoint_uri(settings, query)
        found.append(Checkpoint(query, uri, _exists(settings, uri)))
    return found


def _exists(settings: Settings, uri: str) -> bool:
    filesystem, path = checkpoint_filesystem(settings, uri)
    return bool(filesystem.get_file_info(pafs.FileSelector(path, allow_not_found=True)))


def sink_log_uri(settings: Settings, query: str) -> str:
    return f"{dataset_uri(settings, FILE_SINKS[query])}/_spark_metadata"


def orphaned_sink_logs(settings: Settings) -> list[str]:
    """Lake sink logs left by an earlier run whose checkpoint is gone.

    Spark skips a batch whose id its sink log already holds, so a new checkpoint (counting from batch 0
    again) writing under such a log would have its first batches silently left out of the lake. A
    checkpoint with an offsets log is not new, even without a commit: a job killed in its first batch,
    after the sink logged it and before the commit, reruns that batch under the same id, which the sink
    rightly skips.
    """
    return [
        sink_log_uri(settings, query)
        for query in FILE_SINKS
        if not _exists(settings, f"{checkpoint_uri(settings, query)}/offsets")
        and _exists(settings, sink_log_uri(settings, query))
    ]


ORPHANED_SINK_LOGS_FIX = (
    "restore those checkpoints, or start over with `sensorpipe stream --reset`, which removes the sink logs"
    " too (the lake then lists only what the new run writes; older files stay on disk outside the log)"
)


def orphaned_sink_logs_cause(settings: Settings, logs: list[str]) -> str:
    return (
        f"the lake's file sink log ({', '.join(logs)}) belongs to an earlier run whose checkpoint under"
        f" {checkpoint_base(settings)} is gone: a new checkpoint would have its first batches skipped in the"
        " lake, silently"
    )


def orphaned_sink_logs_message(settings: Settings, logs: list[str]) -> str:
    return f"{orphaned_sink_logs_cause(settings, logs)}. Either {ORPHANED_SINK_LOGS_FIX}"


def reset_checkpoints(settings: Settings) -> list[str]:
    """Delete every query's checkpoint and the lake's sink logs; returns the URIs deleted. Ask the user first.

    The next start reads Kafka from the earliest offset it still retains; the database sinks are
    idempotent, so readings stored before are not stored twice; the lake lists only what the new run
    writes (its older files stay on disk, outside the new sink log).
    """
    deleted = []
    targets = [(c.query, c.uri) for c in checkpoints(settings) if c.exists]
    targets += [
        (query, sink_log_uri(settings, query))
        for query in FILE_SINKS
        if _exists(settings, sink_log_uri(settings, query))
    ]
    for query, uri in targets:
        _delete_tree(settings, uri)
        logger.warning("deleted %s of query %s (stream --reset)", uri, query)
        deleted.append(uri)
    return deleted


def _delete_tree(settings: Settings, uri: str) -> None:
    """Delete a checkpoint or sink log directory with everything under it."""
    parts = urlsplit(uri)
    if parts.scheme in {"s3a", "s3"}:
        # Directories too: see delete_prefix (the stack's S3 server would keep them and Spark would see them).
        delete_prefix(settings.s3, parts.netloc, unquote(parts.path))
        return
    filesystem, path = checkpoint_filesystem(settings, uri)
    filesystem.delete_dir(path)


START_OVER = (
    "start over with `sensorpipe stream --reset` (the sinks are idempotent: nothing is stored twice,"
    " and everything Kafka still retains is read again)"
)
"""The way out of a checkpoint that cannot be used, shared by the job's failures and doctor."""

ACCEPT_THE_GAP = (
    "restore them to the topic, or accept the gap with `sensorpipe stream --reset`"
    " (it restarts from the earliest retained offset), and consider a longer kafka.retention_ms"
)
"""The ways out of a checkpoint whose Kafka offsets retention deleted, shared by the job's failures and doctor."""

# Spark's wording when a restarted query no longer fits what its checkpoint recorded.
_INCOMPATIBLE = (
    re.compile(r"STATE_STORE_\w*(SCHEMA|MISMATCH)\w*|schema for existing state|state schema", re.IGNORECASE),
    re.compile(r"STREAMING_STATEFUL_OPERATOR_NOT_MATCH_IN_STATE_METADATA", re.IGNORECASE),
    re.compile(r"There are \[?\d+\]? sources in the checkpoint offsets", re.IGNORECASE),
    re.compile(r"number of partitions .* (do not|does not|doesn't) match", re.IGNORECASE),
)
_DATA_LOSS = re.compile(r"not available in Kafka any ?more|offsets? out of range|OFFSET_OUT_OF_RANGE", re.IGNORECASE)


def explain_failure(settings: Settings, query: str, error_text: str) -> str | None:
    """A clear message for a query that failed because of its checkpoint; None for any other failure."""
    uri = checkpoint_uri(settings, query)
    if any(pattern.search(error_text) for pattern in _INCOMPATIBLE):
        return (
            f"the checkpoint of query {query} at {uri} was written by a different version of the query"
            f" (its sources, state or aggregation changed). Either run the version that wrote it, or {START_OVER}"
        )
    if _DATA_LOSS.search(error_text):
        return (
            f"the checkpoint of query {query} at {uri} points at Kafka offsets that {settings.kafka.topic} no"
            " longer retains (retention deleted them before the job read them: it was stopped too long, or"
            " their producer stamped them older than kafka.retention_ms): those readings are gone from"
            f" Kafka. Either {ACCEPT_THE_GAP}"
        )
    return None
