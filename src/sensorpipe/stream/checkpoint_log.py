"""Reading a query's checkpoint as Spark writes it, so that doctor can tell before a start whether it still fits.

A checkpoint directory holds `metadata` (`{"id": "<query id>"}`), the offset log `offsets/<batch>` and the
commit log `commits/<batch>`, one file per batch (Spark's OffsetSeqLog and CommitLog, both HDFSMetadataLog).
An offsets file is a `v1` line, a line of batch metadata (JSON, or empty), then one line per source: that
source's offset as JSON, or `-` when it had none. A Kafka source's offset is `{"topic": {"partition":
offset, ...}}` (KafkaSourceOffset, through JsonUtils.partitionOffsets); a file source's is `{"logOffset": n}`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pyarrow.fs as pafs

from sensorpipe.config import Settings
from sensorpipe.errors import SensorpipeError
from sensorpipe.stream.checkpoints import checkpoint_filesystem, checkpoint_uri

LOG_VERSION = 1
"""The version of the offset and commit logs Spark writes (`v1`) and reads."""

VOID_OFFSET = "-"
"""Spark's line for a source that had no offset in a batch."""


class UnreadableCheckpointError(SensorpipeError):
    """A checkpoint Spark could not start from; the message names the file and what is wrong with it."""


@dataclass(frozen=True)
class OffsetEntry:
    """One `offsets/<batch>` file: each source's offset as Spark wrote it (JSON text, None for `-`)."""

    batch: int
    sources: tuple[str | None, ...]


@dataclass(frozen=True)
class CheckpointLog:
    """What a restart of the query starts from."""

    uri: str
    query_id: str | None
    """From `metadata`; None when Spark has not written it yet (it does at the first start)."""
    latest: OffsetEntry | None
    """The last batch planned; None when the query never planned one."""
    committed: int | None
    """The last batch completed; a restart runs `latest` again when it is not committed."""
    resume: OffsetEntry | None
    """The offsets a restart reads from: the last committed batch's end (None before the first commit)."""


def read_checkpoint(settings: Settings, query: str) -> CheckpointLog | None:
    """The query's checkpoint as Spark would read it at a start; None when there is none.

    Raises UnreadableCheckpointError for what would stop Spark: an unparseable file, a commit without its offsets.
    """
    uri = checkpoint_uri(settings, query)
    filesystem, path = checkpoint_filesystem(settings, uri)
    if not filesystem.get_file_info(pafs.FileSelector(path, allow_not_found=True)):
        return None
    query_id = _query_id(filesystem, path, uri)
    # Commits first: Spark writes a batch's offsets before its commit, so a running job never looks ahead.
    commits = _batches(filesystem, f"{path}/commits")
    offsets = _batches(filesystem, f"{path}/offsets")
    committed = max(commits) if commits else None
    if not offsets:
        if committed is not None:
            raise UnreadableCheckpointError(f"{uri}/commits/{committed} exists but {uri}/offsets has no batch")
        return CheckpointLog(uri, query_id, None, None, None)
    latest = _offsets(filesystem, offsets, max(offsets), uri)
    if committed is not None:
        _read_commit(filesystem, commits[committed], f"{uri}/commits/{committed}")
        if committed > latest.batch:
            raise UnreadableCheckpointError(
                f"{uri}/commits/{committed} is ahead of the last offsets file, {uri}/offsets/{latest.batch}"
            )
    # Spark reads the batch before the last one too, to know where that one starts.
    previous = None
    if latest.batch > 0:
        if latest.batch - 1 not in offsets:
            missing = f"{uri}/offsets/{latest.batch - 1}"
            raise UnreadableCheckpointError(f"{missing} is missing (batch {latest.batch} starts where it ends)")
        previous = _offsets(filesystem, offsets, latest.batch - 1, uri)
    resume = None
    if committed is not None:
        resume = latest if committed >= latest.batch else previous
    return CheckpointLog(uri, query_id, latest, committed, resume)


def _batches(filesystem: pafs.FileSystem, directory: str) -> dict[int, str]:
    """Batch id → path of each file of a metadata log (skipping Spark's `.crc` and temporary files)."""
    infos = filesystem.get_file_info(pafs.FileSelector(directory, allow_not_found=True))
    return {int(i.base_name): i.path for i in infos if i.type == pafs.FileType.File and i.base_name.isdigit()}


def _text(filesystem: pafs.FileSystem, path: str, uri: str) -> str:
    with filesystem.open_input_stream(path) as stream:
        data: bytes = stream.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UnreadableCheckpointError(f"{uri} is not text ({e.reason} at byte {e.start})") from e


def _json(line: str, uri: str, what: str) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as e:
        raise UnreadableCheckpointError(f"{uri} has {what} that is not JSON ({e.msg}: {line[:60]!r})") from e


def _query_id(filesystem: pafs.FileSystem, path: str, uri: str) -> str | None:
    if filesystem.get_file_info(f"{path}/metadata").type != pafs.FileType.File:
        return None
    text = _text(filesystem, f"{path}/metadata", f"{uri}/metadata")
    found = _json(text.strip(), f"{uri}/metadata", "content")
    if not isinstance(found, dict) or not isinstance(found.get("id"), str):
        raise UnreadableCheckpointError(f"{uri}/metadata holds no query id ({text.strip()[:60]!r})")
    return str(found["id"])


def _version(lines: list[str], uri: str) -> None:
    """Spark's validateVersion: `v1`; a later version is a newer Spark's log."""
    first = lines[0].strip() if lines else ""
    if not (first.startswith("v") and first[1:].isdigit()):
        raise UnreadableCheckpointError(f"{uri} does not start with a log version ({first[:20]!r}, not 'v1')")
    if int(first[1:]) > LOG_VERSION:
        raise UnreadableCheckpointError(f"{uri} is from a newer Spark (log {first}, this one reads v{LOG_VERSION})")


def parse_offsets(text: str, batch: int, where: str) -> OffsetEntry:
    """The text of `offsets/<batch>` (at `where`), as Spark's OffsetSeqLog reads it."""
    lines = text.splitlines()
    _version(lines, where)
    if len(lines) < 2:
        raise UnreadableCheckpointError(f"{where} is incomplete (no metadata line)")
    if lines[1].strip():
        _json(lines[1], where, "batch metadata")
    sources: list[str | None] = []
    for line in lines[2:]:
        if line.strip() == VOID_OFFSET:
            sources.append(None)
            continue
        _json(line, where, "a source offset")
        sources.append(line)
    return OffsetEntry(batch, tuple(sources))


def _offsets(filesystem: pafs.FileSystem, files: dict[int, str], batch: int, uri: str) -> OffsetEntry:
    where = f"{uri}/offsets/{batch}"
    return parse_offsets(_text(filesystem, files[batch], where), batch, where)


def _read_commit(filesystem: pafs.FileSystem, path: str, where: str) -> None:
    lines = _text(filesystem, path, where).splitlines()
    _version(lines, where)
    if len(lines) < 2:
        raise UnreadableCheckpointError(f"{where} is incomplete (no commit metadata)")
    _json(lines[1], where, "commit metadata")


def kafka_offsets(source: str) -> dict[str, dict[int, int]]:
    """A Kafka source's offset, `{"topic": {"0": 23, ...}}` → {topic: {partition: offset}}.

    Raises UnreadableCheckpointError when it is no Kafka offset (another kind of source wrote it).
    """
    found = json.loads(source)
    if not isinstance(found, dict) or not all(isinstance(parts, dict) for parts in found.values()):
        raise UnreadableCheckpointError(f"not a Kafka source offset: {source[:80]!r}")
    try:
        return {
            str(topic): {int(partition): int(offset) for partition, offset in parts.items()}
            for topic, parts in found.items()
        }
    except (TypeError, ValueError) as e:
        raise UnreadableCheckpointError(f"not a Kafka source offset: {source[:80]!r}") from e


def entry_offsets(entry: OffsetEntry | None) -> dict[str, dict[int, int]]:
    """The Kafka offsets of a batch's one source ({} for none); UnreadableCheckpointError for another kind."""
    source = entry.sources[0] if entry is not None and entry.sources else None
    return kafka_offsets(source) if source is not None else {}


def records_behind(resume: dict[int, int], marks: dict[int, tuple[int, int]]) -> int:
    """Records Kafka holds (`marks`: partition → (low, high)) that a restart from `resume` has yet to read.

    A partition the checkpoint does not know (added since) is read from its start, as Spark does.
    """
    return sum(max(high - max(resume.get(partition, low), low), 0) for partition, (low, high) in marks.items())


__all__ = [
    "CheckpointLog",
    "OffsetEntry",
    "UnreadableCheckpointError",
    "entry_offsets",
    "kafka_offsets",
    "parse_offsets",
    "read_checkpoint",
    "records_behind",
]
