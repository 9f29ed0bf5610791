"""Where the stream job's queries keep their checkpoints, resetting them on purpose, and explaining them.

The original stack "fixed" broken restarts with a random checkpoint directory per start, which silently
reprocesses or skips data (problem 7). Here every query has one stable checkpoint under one base
(`stream.checkpoint_base`, by default `<lake root>/_checkpoints/<query>`), deleting it is an explicit,
logged `--reset`, and a checkpoint that no longer fits the query is reported with the two ways out.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import pyarrow.fs as pafs

from sensorpipe.config import Settings
from sensorpipe.errors import SensorpipeError
from sensorpipe.storage.lake import AGG_1M, Dataset, dataset_uri, delta_table, lake_filesystem
from sensorpipe.storage.s3 import delete_prefix
from sensorpipe.stream.session import is_local_master

logger = logging.getLogger(__name__)

QUERIES = ("readings", "aggregates_lake")
"""The job's streaming queries; a query's name is also its checkpoint directory, so never rename one."""
RETIRED = ("aggregates",)
"""Queries earlier versions ran: `aggregates` kept `sensor_data_1m`, which the readings' writer now merges."""

TABLE_WRITERS: dict[str, Dataset] = {"aggregates_lake": AGG_1M}
"""Queries whose lake table records their batch ids under their checkpoint's query id (stream/job.py).

`raw` is not among them: its commits record Kafka offsets, which hold whatever happens to a checkpoint.
"""


class CheckpointError(SensorpipeError):
    """A checkpoint cannot be used or removed; the message names the cause and the ways out."""


def checkpoint_base(settings: Settings) -> str:
    """The URI under which every query has its checkpoint directory.

    `stream.checkpoint_base` when set. Else, when every Spark process runs on this machine (a local
    master) and the lake is on S3, `<home>/checkpoints` on this machine's disk: a micro-batch writes two
    files there, which on S3 cost a PUT each and S3A's rename a copy and a delete (measured at 200
    readings/s: 36 % more micro-batches for the same CPU on local disk). Otherwise beside the lake
    (`<lake root>/_checkpoints`), where a cluster's executors and a restarted driver find it.
    """
    if settings.stream.checkpoint_base:
        return settings.stream.checkpoint_base.rstrip("/")
    if is_local_master(settings.spark.master) and settings.lake.backend == "s3":
        return (settings.home / "checkpoints").as_uri()
    return lake_checkpoint_base(settings)


def _moves_from_lake(settings: Settings) -> str | None:
    """The base beside the lake when checkpoints found there are to move to `checkpoint_base`, else None."""
    old = lake_checkpoint_base(settings)
    return None if settings.stream.checkpoint_base or old == checkpoint_base(settings) else old


def lake_checkpoint_base(settings: Settings) -> str:
    """Where checkpoints live beside the lake: the default on a cluster, and everywhere before it was local."""
    return f"{settings.lake_uri.rstrip('/')}/_checkpoints"


def move_lake_checkpoints(settings: Settings) -> list[str]:
    """Move the checkpoints an earlier run kept beside the lake to `checkpoint_base` when that is now elsewhere
    by default (a local master); the names of those moved. Each is copied under a hidden name, renamed, and
    only then deleted beside the lake, so a move cut short is done again whole at the next start."""
    old, new = _moves_from_lake(settings), checkpoint_base(settings)
    if old is None:
        return []
    source, source_path = checkpoint_filesystem(settings, old)
    target, target_path = checkpoint_filesystem(settings, new)
    found = source.get_file_info(pafs.FileSelector(source_path, allow_not_found=True))
    moved = []
    for query in sorted(i.base_name for i in found if i.type == pafs.FileType.Directory):
        if not tree_exists(settings, f"{new}/{query}"):
            partial = f"{target_path}/.{query}.moving"
            target.delete_dir_contents(partial, missing_dir_ok=True)
            pafs.copy_files(f"{source_path}/{query}", partial, source, target)
            target.move(partial, f"{target_path}/{query}")
        delete_tree(settings, f"{old}/{query}")
        moved.append(query)
    if moved:
        logger.info(
            "moved the checkpoints of %s from %s to %s: with a local master they live on this machine's disk"
            " (set stream.checkpoint_base to keep them elsewhere)",
            ", ".join(moved),
            old,
            new,
        )
    return moved


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
        found.append(Checkpoint(query, uri, tree_exists(settings, uri)))
    return found


def retire_checkpoints(settings: Settings) -> None:
    """Delete the checkpoints of RETIRED queries: nothing reads them any more."""
    for query in RETIRED:
        uri = f"{checkpoint_base(settings)}/{query}"
        if tree_exists(settings, uri):
            delete_tree(settings, uri)
            logger.info("deleted the checkpoint of the retired query %s (%s): nothing reads it any more", query, uri)


def tree_exists(settings: Settings, uri: str) -> bool:
    filesystem, path = checkpoint_filesystem(settings, uri)
    return bool(filesystem.get_file_info(pafs.FileSelector(path, allow_not_found=True)))


def checkpoint_query_id(settings: Settings, query: str) -> str:
    """The id Spark keeps in a query's checkpoint (`metadata`): the same across restarts, new after a reset."""
    filesystem, path = checkpoint_filesystem(settings, checkpoint_uri(settings, query))
    with filesystem.open_input_stream(f"{path}/metadata") as stream:
        return str(json.loads(stream.read().decode().splitlines()[0])["id"])


def orphaned_tables(settings: Settings) -> list[str]:
    """Lake tables holding rows of an earlier run whose checkpoint is gone.

    A new checkpoint has a new query id and reads `raw` from its first version, so it would append
    every final minute to `agg_1m` again: each twice, silently. A checkpoint with an offsets log is not
    new, even without a commit.
    """
    orphaned = []
    earlier = _moves_from_lake(settings)  # the next start moves them: they are not gone
    for query, dataset in TABLE_WRITERS.items():
        if tree_exists(settings, f"{checkpoint_uri(settings, query)}/offsets"):
            continue
        if earlier is not None and tree_exists(settings, f"{earlier}/{query}/offsets"):
            continue
        table = delta_table(settings, dataset)
        if table is not None and table.file_uris():
            orphaned.append(dataset_uri(settings, dataset))
    return orphaned


ORPHANED_TABLES_FIX = (
    "restore that checkpoint, or start over with `sensorpipe stream --reset`, which empties agg_1m too"
    " (the aggregates then compute it again from raw)"
)


def orphaned_tables_cause(settings: Settings, tables: list[str]) -> str:
    return (
        f"the lake's {', '.join(tables)} holds the minutes of an earlier run whose checkpoint under"
        f" {checkpoint_base(settings)} is gone: a new checkpoint would append every minute again"
    )


def orphaned_tables_message(settings: Settings, tables: list[str]) -> str:
    return f"{orphaned_tables_cause(settings, tables)}. Either {ORPHANED_TABLES_FIX}"


@dataclass(frozen=True)
class Reset:
    """What `reset_checkpoints` did."""

    deleted: list[str]
    """Checkpoints deleted."""
    emptied: list[str]
    """Lake tables emptied (their query's new checkpoint computes them again)."""


def reset_checkpoints(settings: Settings) -> Reset:
    """Delete every query's checkpoint and empty `agg_1m`. Ask the user first.

    The next start reads Kafka from the earliest offset it still retains; the database sinks are
    idempotent and `raw` records the offsets it holds, so readings stored before are not stored twice;
    the aggregates compute `agg_1m` again from all of `raw` (the emptying is a Delta commit: time travel
    still shows the old rows until `VACUUM`).
    """
    deleted, emptied = [], []
    earlier = _moves_from_lake(settings)
    for checkpoint in checkpoints(settings):
        found = [checkpoint.uri] if checkpoint.exists else []
        if earlier is not None and tree_exists(settings, f"{earlier}/{checkpoint.query}"):
            found.append(f"{earlier}/{checkpoint.query}")  # not moved yet: the next start would
        for uri in found:
            delete_tree(settings, uri)
            logger.warning("deleted %s of query %s (stream --reset)", uri, checkpoint.query)
            deleted.append(uri)
    for query, dataset in TABLE_WRITERS.items():
        table = delta_table(settings, dataset)
        if table is not None and table.file_uris():
            table.delete()
            logger.warning("emptied %s of query %s (stream --reset)", dataset_uri(settings, dataset), query)
            emptied.append(dataset_uri(settings, dataset))
    return Reset(deleted, emptied)


def delete_tree(settings: Settings, uri: str) -> None:
    """Delete a checkpoint directory with everything under it."""
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
