"""Problem 5: the lake's bucket exists and takes a write with the configured S3 settings, and its Delta
tables are readable and kept up (files compacted, log checkpointed, `VACUUM` not cutting under the job)."""

from __future__ import annotations

import json
import statistics
import time
import uuid
from datetime import UTC, datetime

from botocore.exceptions import BotoCoreError, ClientError

from sensorpipe.config import S3Settings, Settings
from sensorpipe.doctor.check import Check, failed, passed, split_fix
from sensorpipe.errors import SensorpipeError
from sensorpipe.storage.lake import Dataset, dataset_path, delta_table, lake_filesystem, table_files
from sensorpipe.storage.s3 import explain, s3_client

MIN_VACUUM_RETENTION_HOURS = 24
"""Below this, VACUUM may delete files of `raw` the aggregates have not read yet after a stop of a day."""
MAX_FILES_PER_PAST_DAY = 50
"""More files in a finished day means compaction is not running (a day of commits makes ~1,440)."""
MAX_VERSIONS_WITHOUT_CHECKPOINT = 200
"""A log this long without a checkpoint makes every reader replay it whole (delta-rs writes one every 100)."""
SMALL_FILE_SHARE_OF_TARGET = 8
"""A file smaller than `lake.target_file_mb` / 8 counts as small."""


def check_bucket(settings: Settings) -> Check:
    name = "lake bucket"
    if settings.lake.backend == "local":
        return _check_local(settings)
    s3 = settings.s3
    client = s3_client(s3, timeout_s=5.0, retries=1)
    key = f".sensorpipe-doctor-{uuid.uuid4().hex}"  # at the root: no directory left behind on SeaweedFS
    try:
        client.head_bucket(Bucket=s3.bucket)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") in {"404", "NoSuchBucket"}:
            return failed(
                name,
                f"S3 at {s3.endpoint} has no bucket {s3.bucket!r}",
                "`sensorpipe stack up` creates it (or create it yourself), or set s3.bucket (MINIO_BUCKET)",
            )
        return failed(name, *_explained(s3, e))
    except BotoCoreError as e:
        return failed(name, *_explained(s3, e))
    try:
        client.put_object(Bucket=s3.bucket, Key=key, Body=b"sensorpipe doctor")
        client.delete_object(Bucket=s3.bucket, Key=key)
    except (ClientError, BotoCoreError) as e:
        cause, fix = _explained(s3, e)
        return failed(name, f"s3://{s3.bucket} refused a write: {cause}", fix)
    return passed(name, f"s3://{s3.bucket} at {s3.endpoint}: put and delete work")


def _explained(s3: S3Settings, error: ClientError | BotoCoreError) -> tuple[str, str]:
    """(cause, fix) of a boto error; a bare 403 (a HEAD request has no error body) means keys or rights."""
    code = error.response.get("Error", {}).get("Code", "") if isinstance(error, ClientError) else ""
    if code == "403":
        return (
            f"S3 at {s3.endpoint} refused access key {s3.access_key!r} (403 Forbidden)",
            "check s3.access_key / s3.secret_key (MINIO_ACCESS_KEY / MINIO_SECRET_KEY)"
            f" and their rights on {s3.bucket}",
        )
    message = str(explain(s3, error))
    if f"{s3.endpoint} answered" in message or f"{s3.endpoint} failed" in message:
        return message, "check s3.endpoint and the S3 server's log"
    return split_fix(message)


def _check_local(settings: Settings) -> Check:
    directory = settings.lake_dir
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    probe = existing / f".sensorpipe-doctor-{uuid.uuid4().hex}"
    try:
        probe.write_bytes(b"sensorpipe doctor")
        probe.unlink()
    except OSError as e:
        return failed(
            "lake bucket",
            f"the local lake {directory} is not writable ({e.strerror})",
            "fix its permissions or set lake.local_dir",
        )
    return passed("lake bucket", f"local lake {directory} is writable (lake.backend = local)")


def check_table(dataset: Dataset, settings: Settings) -> Check:
    """`dataset` reads; when it was last written; files per day and how many are small; the log's checkpoint."""
    name = f"lake table {dataset}"
    lake = settings.lake
    if lake.vacuum_retention_hours < MIN_VACUUM_RETENTION_HOURS:
        return failed(
            name,
            f"lake.vacuum_retention_hours is {lake.vacuum_retention_hours}: VACUUM could delete files of raw that"
            " the aggregates have not read yet, after the job was stopped that long",
            f"set lake.vacuum_retention_hours to {MIN_VACUUM_RETENTION_HOURS} or more (default 168)",
        )
    try:
        table = delta_table(settings, dataset)
        if table is None:
            return passed(name, "none yet: the stream job creates it")
        files = table_files(table).select(["size_bytes", "partition.date"]).to_pylist()
        last = table.history(1)[0]
    except SensorpipeError as e:
        return failed(name, *split_fix(str(e)))
    age_s = max(time.time() - last["timestamp"] / 1000, 0.0)
    per_day: dict[str, int] = {}
    for f in files:
        per_day[f["partition.date"]] = per_day.get(f["partition.date"], 0) + 1
    small = sum(1 for f in files if f["size_bytes"] < lake.target_file_mb * 2**20 / SMALL_FILE_SHARE_OF_TARGET)
    checkpoint = _last_checkpoint(settings, dataset)
    detail = (
        f"version {table.version()}, last commit {_ago(age_s)} ago ({last['operation']}); {len(files):,} file(s) in"
        f" {len(per_day)} day(s), median {statistics.median(per_day.values()) if per_day else 0:g} per day,"
        f" {small * 100 // max(len(files), 1)} % small; "
        + (f"log checkpoint at version {checkpoint}" if checkpoint is not None else "no log checkpoint yet")
    )
    if checkpoint is None and table.version() >= MAX_VERSIONS_WITHOUT_CHECKPOINT:
        return failed(
            name,
            f"{detail}: every reader replays all {table.version() + 1} log entries",
            "`sensorpipe lake maintain` writes one; keep lake.maintenance_interval_s set in the stream job",
        )
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    crowded = sorted(day for day, n in per_day.items() if day < today and n > MAX_FILES_PER_PAST_DAY)
    if crowded:
        return failed(
            name,
            f"{detail}; {len(crowded)} finished day(s) hold more than {MAX_FILES_PER_PAST_DAY} files"
            f" ({crowded[0]}: {per_day[crowded[0]]}): compaction is not running",
            "`sensorpipe lake maintain`, and keep lake.maintenance_interval_s set (default 3600) in the stream job",
        )
    return passed(name, detail)


def _last_checkpoint(settings: Settings, dataset: Dataset) -> int | None:
    """The version of the table's newest log checkpoint (`_delta_log/_last_checkpoint`), if it has one."""
    filesystem = lake_filesystem(settings)
    try:
        with filesystem.open_input_stream(f"{dataset_path(settings, dataset)}/_delta_log/_last_checkpoint") as f:
            return int(json.loads(f.read())["version"])
    except FileNotFoundError:
        return None


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


__all__ = ["check_bucket", "check_table"]
