"""Problem 5: the lake's bucket exists and takes a write with the configured S3 settings."""

from __future__ import annotations

import uuid

from botocore.exceptions import BotoCoreError, ClientError

from sensorpipe.config import S3Settings, Settings
from sensorpipe.doctor.check import Check, failed, passed, split_fix
from sensorpipe.storage.s3 import explain, s3_client


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


__all__ = ["check_bucket"]
