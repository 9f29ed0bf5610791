"""`reset_checkpoints` deletes exactly the job's checkpoints, on the real S3 server and on a local directory."""

from __future__ import annotations

from pathlib import Path

import pyarrow.fs as pafs
import pytest

from sensorpipe.config import Settings, load_settings
from sensorpipe.stream.checkpoints import (
    checkpoint_filesystem,
    checkpoint_uri,
    checkpoints,
    orphaned_sink_logs,
    orphaned_sink_logs_message,
    reset_checkpoints,
    sink_log_uri,
)

pytestmark = pytest.mark.integration


def _write(settings: Settings, uri: str, name: str) -> None:

    filesystem, path = checkpoint_filesystem(settings, uri)
    filesystem.create_dir(path)
    with filesystem.open_output_stream(f"{path}/{name}") as out:
        out.write(b"v1\n{}")


@pytest.mark.parametrize("backend", ["s3", "local"])
def test_reset_deletes_the_queries_checkpoints_and_nothing_else(
    stack_settings: Settings, tmp_path: Path, backend: str
) -> None:
    base = f"s3a://{stack_settings.s3.bucket}/ckpt-{tmp_path.name}" if backend == "s3" else (tmp_path / "ckpt").as_uri()
    settings = stack_settings.model_copy(
        update={"stream": stack_settings.stream.model_copy(update={"checkpoint_base": base})}
    )
    assert not any(c.exists for c in checkpoints(settings))
    _write(settings, checkpoint_uri(settings, "readings"), "offsets-0")
    _write(settings, checkpoint_uri(settings, "aggregates"), "commits-0")
    _write(settings, f"{base}/not-a-query", "keep-me")

    assert {c.query for c in checkpoints(settings) if c.exists} == {"readings", "aggregates"}
    deleted = reset_checkpoints(settings)
    assert sorted(deleted) == sorted([checkpoint_uri(settings, "readings"), checkpoint_uri(settings, "aggregates")])
    assert not any(c.exists for c in checkpoints(settings))

    filesystem, path = checkpoint_filesystem(settings, f"{base}/not-a-query")
    assert filesystem.get_file_info(f"{path}/keep-me").type == pafs.FileType.File
    assert reset_checkpoints(settings) == []


def test_a_lake_sink_log_without_its_checkpoint_is_caught_and_reset_removes_it(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    settings = load_settings({"lake": {"backend": "local", "local_dir": tmp_path / "lake"}})
    assert orphaned_sink_logs(settings) == []
    log = sink_log_uri(settings, "readings")
    _write(settings, log, "0")  # an earlier run's file sink log; its checkpoint is gone
    assert orphaned_sink_logs(settings) == [log]
    message = orphaned_sink_logs_message(settings, [log])
    assert "first batches skipped in the lake" in message and "`sensorpipe stream --reset`" in message

    # With its checkpoint it is fine, even one killed in its first batch: an offsets log and no commit yet.
    _write(settings, f"{checkpoint_uri(settings, 'readings')}/offsets", "0")
    assert orphaned_sink_logs(settings) == []
    assert sorted(reset_checkpoints(settings)) == sorted([checkpoint_uri(settings, "readings"), log])
    assert orphaned_sink_logs(settings) == [] and not any(c.exists for c in checkpoints(settings))
