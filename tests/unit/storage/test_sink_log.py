"""Spark's file sink log as `FileStreamSinkLog` writes it (a version line, then one JSON object per line):
which files a lake of sensorpipe before Delta committed, for `sensorpipe lake migrate`."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from sensorpipe.storage.lake import LakeError
from sensorpipe.storage.sink_log import committed_files


def _entry(path: str, action: str = "add") -> str:
    return json.dumps(
        {
            "path": path,
            "size": 1234,
            "isDir": False,
            "modificationTime": 1795818162171,
            "blockReplication": 1,
            "blockSize": 33554432,
            "action": action,
        }
    )


def _log(dataset: Path, name: str, *entries: str) -> None:
    log = dataset / "_spark_metadata"
    log.mkdir(parents=True, exist_ok=True)
    (log / name).write_text("\n".join(["v1", *entries]))


def _part(dataset: Path, name: str) -> str:
    """A URI as Spark logs it for the local filesystem: `file:/abs/…`, percent-encoded."""
    return f"file:{dataset}/date=2026-11-27/hour=14/{name}".replace(" ", "%20")


def test_no_log_is_none_and_an_empty_log_commits_nothing(tmp_path: Path) -> None:
    local = pafs.LocalFileSystem()
    assert committed_files(local, str(tmp_path / "raw")) is None
    (tmp_path / "raw" / "_spark_metadata").mkdir(parents=True)
    assert committed_files(local, str(tmp_path / "raw")) == []


def test_batches_add_and_delete_files(tmp_path: Path) -> None:
    raw = tmp_path / "r a w"
    _log(raw, "0", _entry(_part(raw, "a.parquet")), _entry(_part(raw, "b.parquet")))
    _log(raw, "1", _entry(f"file://{raw}/date=2026-11-27/hour=14/c.parquet".replace(" ", "%20")))
    _log(raw, "2", _entry(_part(raw, "a.parquet"), action="delete"))
    _log(raw, ".2.crc", "garbage")
    (raw / "_spark_metadata" / ".3.tmp").write_text("v1\n" + _entry(_part(raw, "orphan.parquet")))
    files = committed_files(pafs.LocalFileSystem(), str(raw))
    assert files == [f"{raw}/date=2026-11-27/hour=14/{name}" for name in ("b.parquet", "c.parquet")]


def test_the_newest_compact_file_replaces_the_batches_before_it(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _log(raw, "8", _entry(_part(raw, "superseded.parquet")))
    _log(raw, "9.compact", _entry(_part(raw, "a.parquet")), _entry(_part(raw, "b.parquet")))
    _log(raw, "10", _entry(_part(raw, "c.parquet")), _entry(_part(raw, "b.parquet"), action="delete"))
    _log(raw, "11")  # a batch that wrote nothing
    files = committed_files(pafs.LocalFileSystem(), str(raw))
    assert files == [f"{raw}/date=2026-11-27/hour=14/{name}" for name in ("a.parquet", "c.parquet")]


def test_a_damaged_log_is_an_error_not_a_guess(tmp_path: Path) -> None:
    gap, version, elsewhere = tmp_path / "gap", tmp_path / "version", tmp_path / "elsewhere"
    _log(gap, "0", _entry(_part(gap, "a.parquet")))
    _log(gap, "2", _entry(_part(gap, "b.parquet")))
    with pytest.raises(LakeError, match=r"lacks batch 1 of 0\.\.2"):
        committed_files(pafs.LocalFileSystem(), str(gap))
    (version / "_spark_metadata").mkdir(parents=True)
    (version / "_spark_metadata" / "0").write_text("v2\n" + _entry(_part(version, "a.parquet")))
    with pytest.raises(LakeError, match="expected the file sink log version 'v1' first, found 'v2'"):
        committed_files(pafs.LocalFileSystem(), str(version))
    _log(elsewhere, "0", _entry("s3a://bucket/raw/date=2026-11-27/hour=14/a.parquet"))
    with pytest.raises(LakeError, match="not on this lake's local filesystem"):
        committed_files(pafs.LocalFileSystem(), str(elsewhere))
