"""`reset_checkpoints` deletes exactly the job's checkpoints (and empties agg_1m, which its new checkpoint
computes again), on the real S3 server and on a local directory."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from sensorpipe.config import Settings, load_settings
from sensorpipe.storage.lake import AGG_1M, RAW, dataset_uri, read_dataset, write_dataset
from sensorpipe.storage.s3 import ensure_bucket
from sensorpipe.stream.checkpoints import (
    checkpoint_filesystem,
    checkpoint_uri,
    checkpoints,
    lake_checkpoint_base,
    move_lake_checkpoints,
    orphaned_tables,
    orphaned_tables_message,
    reset_checkpoints,
    retire_checkpoints,
    tree_exists,
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
    _write(settings, checkpoint_uri(settings, "aggregates_lake"), "commits-0")
    _write(settings, f"{base}/not-a-query", "keep-me")

    assert {c.query for c in checkpoints(settings) if c.exists} == {"readings", "aggregates_lake"}
    reset = reset_checkpoints(settings)
    assert sorted(reset.deleted) == sorted(
        [checkpoint_uri(settings, "readings"), checkpoint_uri(settings, "aggregates_lake")]
    )
    assert reset.emptied == []
    assert not any(c.exists for c in checkpoints(settings))

    filesystem, path = checkpoint_filesystem(settings, f"{base}/not-a-query")
    assert filesystem.get_file_info(f"{path}/keep-me").type == pafs.FileType.File
    assert reset_checkpoints(settings).deleted == []


def test_the_checkpoint_of_a_retired_query_is_deleted_and_nothing_else(
    stack_settings: Settings, tmp_path: Path
) -> None:
    base = (tmp_path / "ckpt").as_uri()
    settings = stack_settings.model_copy(
        update={"stream": stack_settings.stream.model_copy(update={"checkpoint_base": base})}
    )
    _write(settings, f"{base}/aggregates", "offsets-7")  # sensorpipe before its writer merged the minutes
    _write(settings, checkpoint_uri(settings, "readings"), "offsets-0")
    retire_checkpoints(settings)
    assert not (tmp_path / "ckpt" / "aggregates").exists()
    assert {c.query for c in checkpoints(settings) if c.exists} == {"readings"}


def test_agg_1m_without_its_checkpoint_is_caught_and_reset_empties_it(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    settings = load_settings({"lake": {"backend": "local", "local_dir": tmp_path / "lake"}})
    assert orphaned_tables(settings) == []
    minute = pa.table({"bucket": pa.array([datetime(2026, 12, 7, 9, 0, tzinfo=UTC)], pa.timestamp("us", tz="UTC"))})
    write_dataset(settings, AGG_1M, minute)  # an earlier run's minutes; its checkpoint is gone
    write_dataset(settings, RAW, pa.table({"time": minute["bucket"]}))
    table = dataset_uri(settings, AGG_1M)
    assert orphaned_tables(settings) == [table]
    message = orphaned_tables_message(settings, [table])
    assert "would append every minute again" in message and "`sensorpipe stream --reset`" in message

    # With its checkpoint it is fine, even one killed in its first batch: an offsets log and no commit yet.
    _write(settings, f"{checkpoint_uri(settings, 'aggregates_lake')}/offsets", "0")
    assert orphaned_tables(settings) == []
    reset = reset_checkpoints(settings)
    assert (reset.deleted, reset.emptied) == ([checkpoint_uri(settings, "aggregates_lake")], [table])
    assert orphaned_tables(settings) == [] and not any(c.exists for c in checkpoints(settings))
    assert (read_dataset(settings, AGG_1M).num_rows, read_dataset(settings, RAW).num_rows) == (0, 1)


def test_checkpoints_an_earlier_run_kept_beside_the_lake_move_to_this_machine_with_a_local_master(
    stack_settings: Settings, tmp_path: Path
) -> None:
    bucket = f"ckpt-move-{tmp_path.name}".lower().replace("_", "-")[:60]
    settings = stack_settings.model_copy(
        update={
            "stack": stack_settings.stack.model_copy(update={"home": tmp_path / "home"}),
            "s3": stack_settings.s3.model_copy(update={"bucket": bucket}),
        }
    )
    ensure_bucket(settings.s3)
    beside_lake = lake_checkpoint_base(settings)
    assert beside_lake.startswith("s3a://") and checkpoint_uri(settings, "readings").startswith("file://")
    _write(settings, f"{beside_lake}/readings/offsets", "0")  # what sensorpipe before 2026-12-07 kept there
    _write(settings, f"{beside_lake}/aggregates_lake/commits", "0")
    minute = pa.array([datetime(2026, 12, 7, 9, 0, tzinfo=UTC)], pa.timestamp("us", tz="UTC"))
    write_dataset(settings, AGG_1M, pa.table({"bucket": minute}))
    _write(settings, f"{beside_lake}/aggregates_lake/offsets", "0")
    assert orphaned_tables(settings) == [], "not moved yet is not gone"

    assert move_lake_checkpoints(settings) == ["aggregates_lake", "readings"]
    local = tmp_path / "home" / "checkpoints"
    assert (local / "readings" / "offsets" / "0").read_bytes() == b"v1\n{}"
    assert sorted(p.name for p in (local / "aggregates_lake").iterdir()) == ["commits", "offsets"]
    assert not [p for p in local.iterdir() if p.name.startswith(".")], "no half-moved copy is left"
    assert not tree_exists(settings, f"{beside_lake}/readings")
    assert orphaned_tables(settings) == []
    assert move_lake_checkpoints(settings) == []
