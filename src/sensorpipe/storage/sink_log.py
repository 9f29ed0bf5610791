"""Spark's file sink log (`<dataset>/_spark_metadata`): which Parquet files a file-sink lake committed.

Lakes written before the Delta tables (sensorpipe before issue 20) list their files there; a batch that
crashed may leave part files no log lists. `sensorpipe lake migrate` turns exactly the listed files into
a Delta table, so it reads the log as Spark's `CompactibleFileStreamLog.allFiles` does.
"""

from __future__ import annotations

import json
import re
from typing import Final
from urllib.parse import unquote, urlsplit

import pyarrow.fs as pafs

from sensorpipe.storage.lake import LakeError

SPARK_METADATA_DIR: Final = "_spark_metadata"
_SINK_LOG_VERSION = "v1"
_SINK_LOG_FILE = re.compile(r"(\d+)(\.compact)?")


def _sink_log_entries(text: str, name: str) -> list[dict[str, object]]:
    """One batch file of Spark's file sink log: a version line, then one JSON object per line."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != _SINK_LOG_VERSION:
        found = lines[0].strip() if lines else "nothing"
        raise LakeError(f"{name}: expected the file sink log version {_SINK_LOG_VERSION!r} first, found {found!r}")
    return [json.loads(line) for line in lines[1:] if line.strip()]


def _uri_to_path(uri: str, filesystem: pafs.FileSystem) -> str:
    """A path from the log (`s3a://bucket/raw/…`, `file:/abs/…`, percent-encoded) as `filesystem` names it."""
    parts = urlsplit(uri)
    if filesystem.type_name == "s3" and parts.scheme in {"s3a", "s3", "s3n"}:
        return unquote(f"{parts.netloc}{parts.path}")
    if filesystem.type_name == "local" and parts.scheme == "file":
        return unquote(parts.path)
    raise LakeError(f"the file sink log lists {uri}, which is not on this lake's {filesystem.type_name} filesystem")


def committed_files(filesystem: pafs.FileSystem, dataset_dir: str) -> list[str] | None:
    """The part files Spark's file sink committed under `dataset_dir`, or None when it has no sink log.

    Mirrors Spark's `CompactibleFileStreamLog.allFiles`: the newest `N.compact` file holds every
    earlier batch, then each later batch file `N+1`, `N+2`, … up to the newest must exist. A path is
    live when some batch adds it and no batch deletes it. Hidden files (`.0.crc`, `.1.tmp`) are skipped.
    An empty log means no batch committed yet: no files, even if part files lie around.
    """
    log_dir = f"{dataset_dir}/{SPARK_METADATA_DIR}"
    if filesystem.get_file_info(log_dir).type != pafs.FileType.Directory:
        return None
    batches: dict[int, str] = {}
    for info in filesystem.get_file_info(pafs.FileSelector(log_dir)):
        match = _SINK_LOG_FILE.fullmatch(info.base_name)
        if info.type == pafs.FileType.File and match:
            batch = int(match.group(1))
            if match.group(2) or batch not in batches:
                batches[batch] = info.path
    if not batches:
        return []
    latest = max(batches)
    compacted = [batch for batch, path in batches.items() if path.endswith(".compact")]
    first = max(compacted, default=0)
    missing = [batch for batch in range(first, latest + 1) if batch not in batches]
    if missing:
        raise LakeError(f"{log_dir} lacks batch {missing[0]} of {first}..{latest}: the file sink log is damaged")
    added: dict[str, None] = {}
    deleted: set[str] = set()
    for batch in range(first, latest + 1):
        with filesystem.open_input_stream(batches[batch]) as stream:
            entries = _sink_log_entries(stream.read().decode(), batches[batch])
        for entry in entries:
            path = str(entry["path"])
            if entry.get("action", "add") == "delete":
                deleted.add(path)
            else:
                added[path] = None
    return [_uri_to_path(uri, filesystem) for uri in added if uri not in deleted]
