"""S3 clients built one way from settings (MinIO, SeaweedFS or AWS), and errors that say what to do."""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from sensorpipe.config import S3Settings
from sensorpipe.errors import SensorpipeError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef


class S3Error(SensorpipeError):
    """The S3 server could not be reached, refused our keys, or lacks the bucket."""


def s3_client(settings: S3Settings, *, timeout_s: float = 10.0, retries: int = 3) -> S3Client:
    """Path-style addressing, so that a bucket never has to resolve as a host name."""
    return boto3.client(
        "s3",
        endpoint_url=settings.endpoint,
        aws_access_key_id=settings.access_key,
        aws_secret_access_key=settings.secret_key.get_secret_value(),
        region_name=settings.region,
        config=Config(
            s3={"addressing_style": "path"},
            connect_timeout=timeout_s,
            read_timeout=timeout_s,
            retries={"max_attempts": retries, "mode": "standard"},
        ),
    )


def explain(settings: S3Settings, error: Exception) -> S3Error:
    """Turn a boto error into one sentence with the fix."""
    where = f"S3 at {settings.endpoint}"
    if isinstance(error, EndpointConnectionError):
        return S3Error(f"{where} refused the connection: is `sensorpipe stack up` running?")
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        if code in {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"}:
            return S3Error(
                f"{where} refused the keys of access key {settings.access_key!r} ({code}):"
                " check s3.access_key / s3.secret_key (MINIO_ACCESS_KEY / MINIO_SECRET_KEY)"
            )
        if code in {"NoSuchBucket", "404"}:
            return S3Error(f"{where} has no bucket {settings.bucket!r}: run `sensorpipe stack up` or create it")
        return S3Error(f"{where} answered {code}: {error}")
    if isinstance(error, BotoCoreError):
        return S3Error(f"{where} failed: {error}")
    return S3Error(f"{where} failed: {error}")


def ensure_bucket(settings: S3Settings) -> bool:
    """Create the configured bucket unless it exists; True when it was created."""
    client = s3_client(settings)
    try:
        client.head_bucket(Bucket=settings.bucket)
        return False
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") not in {"404", "NoSuchBucket"}:
            raise explain(settings, e) from e
    except BotoCoreError as e:
        raise explain(settings, e) from e
    try:
        client.create_bucket(Bucket=settings.bucket)
    except (ClientError, BotoCoreError) as e:
        raise explain(settings, e) from e
    return True


def list_buckets(settings: S3Settings, timeout_s: float = 3.0) -> list[str]:
    try:
        response = s3_client(settings, timeout_s=timeout_s, retries=1).list_buckets()
    except (ClientError, BotoCoreError) as e:
        raise explain(settings, e) from e
    return [bucket["Name"] for bucket in response.get("Buckets", [])]


def delete_prefix(settings: S3Settings, bucket: str, prefix: str) -> int:
    """Delete every object under `prefix/` and its directories; returns the objects deleted.

    Some S3 servers (SeaweedFS, the stack's default) keep a prefix's directories after its objects are
    deleted and go on listing them as common prefixes, so a tree that looks deleted is still "there" for
    a client that lists with a delimiter (Spark finds an emptied `state/` and refuses to start a stateful
    query at batch 0). Deleting each directory's key (`dir/`), deepest first, removes them.
    """
    client = s3_client(settings)
    root = prefix.strip("/") + "/"
    deleted = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=root):
        keys: list[ObjectIdentifierTypeDef] = [{"Key": entry["Key"]} for entry in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            deleted += len(keys)
    for directory in [*reversed(_directories(client, bucket, root)), root]:
        client.delete_object(Bucket=bucket, Key=directory)
    return deleted


def _directories(client: S3Client, bucket: str, prefix: str) -> list[str]:
    """Every directory (common prefix) under `prefix`, parents before children."""
    found: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        for entry in page.get("CommonPrefixes", []):
            found += [entry["Prefix"], *_directories(client, bucket, entry["Prefix"])]
    return found
