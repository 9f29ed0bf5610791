"""Checkpoint locations are stable, a failure caused by a checkpoint is explained with its two ways out, and
Spark's checkpoint files are read as Spark reads them (doctor's checks of problem 7 without Kafka)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa
import pytest

from sensorpipe.config import Settings, load_settings
from sensorpipe.doctor.checkpoints import check_checkpoint
from sensorpipe.storage.lake import AGG_1M, write_dataset
from sensorpipe.stream.checkpoint_log import (
    UnreadableCheckpointError,
    entry_offsets,
    kafka_offsets,
    parse_offsets,
    read_checkpoint,
    records_behind,
)
from sensorpipe.stream.checkpoints import (
    QUERIES,
    CheckpointError,
    checkpoint_uri,
    checkpoints,
    explain_failure,
    lake_checkpoint_base,
)


def test_checkpoints_live_on_this_machine_with_a_local_master_else_beside_the_lake_unless_configured(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    local_master = load_settings({"stack": {"home": home}})  # local[*] and a lake on S3: the defaults
    assert checkpoint_uri(local_master, "readings") == f"{home.as_uri()}/checkpoints/readings"
    assert lake_checkpoint_base(local_master) == "s3a://sensordata/_checkpoints"
    several = load_settings({"stack": {"home": home}, "spark": {"master": "local-cluster[2,1,1024]"}})
    assert checkpoint_uri(several, "readings") == f"{home.as_uri()}/checkpoints/readings"
    cluster = load_settings({"spark": {"master": "spark://10.0.0.5:7077"}})
    assert checkpoint_uri(cluster, "readings") == "s3a://sensordata/_checkpoints/readings"
    local = load_settings({"lake": {"backend": "local", "local_dir": tmp_path}})
    assert checkpoint_uri(local, "aggregates_lake") == f"{tmp_path.as_uri()}/_checkpoints/aggregates_lake"
    custom = load_settings({"stream": {"checkpoint_base": "s3a://other/ckpt/"}})
    assert [checkpoint_uri(custom, q) for q in QUERIES] == [f"s3a://other/ckpt/{q}" for q in QUERIES]
    with pytest.raises(ValueError, match="unknown query"):
        checkpoint_uri(local_master, "lake2")


def test_a_storage_sensorpipe_cannot_manage_is_said_plainly(clean_env: pytest.MonkeyPatch) -> None:
    settings = load_settings({"stream": {"checkpoint_base": "hdfs://namenode/ckpt"}})
    with pytest.raises(CheckpointError, match="delete that directory with your storage's own tools"):
        checkpoints(settings)


@pytest.mark.parametrize(
    "spark_error",
    [
        "[STATE_STORE_KEY_SCHEMA_NOT_COMPATIBLE] Provided key schema does not match existing state key schema.",
        "[STREAMING_STATEFUL_OPERATOR_NOT_MATCH_IN_STATE_METADATA] Streaming stateful operator name does not match",
        "There are [1] sources in the checkpoint offsets and now there are [2] sources requested by the query.",
    ],
)
def test_an_incompatible_checkpoint_names_both_ways_out(spark_error: str, clean_env: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    message = explain_failure(settings, "aggregates_lake", spark_error)
    assert message is not None
    assert f"{(settings.home / 'checkpoints' / 'aggregates_lake').as_uri()}" in message
    assert "run the version that wrote it" in message
    assert "`sensorpipe stream --reset`" in message


def test_offsets_kafka_no_longer_retains_are_a_data_loss_message(clean_env: pytest.MonkeyPatch) -> None:
    error = (
        "Some data may have been lost because they are not available in Kafka any more; either the data was aged out"
    )
    message = explain_failure(load_settings(), "readings", error)
    assert message is not None
    assert "no longer retains" in message and "kafka.retention_ms" in message


def test_other_failures_are_not_blamed_on_the_checkpoint(clean_env: pytest.MonkeyPatch) -> None:
    assert explain_failure(load_settings(), "readings", "java.net.ConnectException: Connection refused") is None


# A checkpoint as Spark 4 writes it (OffsetSeqLog, CommitLog, StreamMetadata): no newline at the end of a file.
QUERY_ID = "2f8c1f0e-7a51-4c8e-9a55-0c1d0b8f3e11"
BATCH_METADATA = (
    '{"batchWatermarkMs":0,"batchTimestampMs":1764320000000,"conf":{"spark.sql.shuffle.partitions":"4",'
    '"spark.sql.streaming.stateStore.providerClass":'
    '"org.apache.spark.sql.execution.streaming.state.HDFSBackedStateStoreProvider"}}'
)


def _settings(tmp_path: Path) -> Settings:
    return load_settings({"lake": {"backend": "local", "local_dir": tmp_path / "lake"}})


def _spark_checkpoint(
    settings: Settings, query: str, offsets: dict[int, list[str]], commits: list[int], *, metadata: str | None = None
) -> Path:
    """A checkpoint in Spark's layout: `metadata`, `offsets/<batch>`, `commits/<batch>`, and Hadoop's .crc files."""
    root = Path(urlsplit(checkpoint_uri(settings, query)).path)
    (root / "offsets").mkdir(parents=True)
    (root / "commits").mkdir()
    (root / "metadata").write_text(metadata if metadata is not None else json.dumps({"id": QUERY_ID}))
    for batch, sources in offsets.items():
        (root / "offsets" / str(batch)).write_text("\n".join(["v1", BATCH_METADATA, *sources]))
        (root / "offsets" / f".{batch}.crc").write_bytes(b"crc\x00")
    for batch in commits:
        (root / "commits" / str(batch)).write_text('v1\n{"nextBatchWatermarkMs":0}')
    return root


def test_reading_a_checkpoint_as_spark_wrote_it(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    settings = _settings(tmp_path)
    assert read_checkpoint(settings, "readings") is None
    _spark_checkpoint(
        settings,
        "readings",
        {0: ['{"sensor-data":{"0":12,"1":9,"2":15}}'], 1: ['{"sensor-data":{"0":20,"1":9,"2":31}}']},
        commits=[0],
    )
    log = read_checkpoint(settings, "readings")
    assert log is not None
    assert log.query_id == QUERY_ID
    assert log.latest is not None and log.latest.batch == 1 and log.committed == 0
    assert log.resume is not None and log.resume.batch == 0  # batch 1 is run again from where batch 0 ended
    assert kafka_offsets(str(log.latest.sources[0])) == {"sensor-data": {0: 20, 1: 9, 2: 31}}
    assert kafka_offsets(str(log.resume.sources[0])) == {"sensor-data": {0: 12, 1: 9, 2: 15}}


def test_a_source_without_offsets_and_a_file_source(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    settings = _settings(tmp_path)
    _spark_checkpoint(settings, "aggregates_lake", {0: ['{"logOffset":0}', "-"]}, commits=[0])
    log = read_checkpoint(settings, "aggregates_lake")
    assert log is not None and log.latest is not None
    assert log.latest.sources == ('{"logOffset":0}', None)
    with pytest.raises(UnreadableCheckpointError, match="not a Kafka source offset"):
        kafka_offsets('{"logOffset":0}')


@pytest.mark.parametrize(
    ("offsets", "commits", "metadata", "cause"),
    [
        ({0: ['{"sensor-data":{"0":12']}, [0], None, r"offsets/0 has a source offset that is not JSON"),
        ({}, [0], None, r"commits/0 exists but .*/offsets has no batch"),
        ({1: ['{"sensor-data":{"0":12}}']}, [], None, r"offsets/0 is missing \(batch 1 starts where it ends\)"),
        ({0: ['{"sensor-data":{"0":12}}']}, [1], None, r"commits/1 is ahead of the last offsets file"),
        ({0: ['{"sensor-data":{"0":12}}']}, [0], "not json", r"metadata has content that is not JSON"),
    ],
)
def test_what_spark_could_not_start_from_is_unreadable(
    tmp_path: Path,
    clean_env: pytest.MonkeyPatch,
    offsets: dict[int, list[str]],
    commits: list[int],
    metadata: str | None,
    cause: str,
) -> None:
    settings = _settings(tmp_path)
    _spark_checkpoint(settings, "readings", offsets, commits, metadata=metadata)
    with pytest.raises(UnreadableCheckpointError, match=cause):
        read_checkpoint(settings, "readings")
    check = check_checkpoint("readings", settings)
    assert not check.ok
    assert check.detail.startswith("unreadable: ")
    assert check.fix is not None and "restore the checkpoint from a backup" in check.fix
    assert "`sensorpipe stream --reset` (the sinks are idempotent" in check.fix


def test_a_log_from_a_newer_spark_is_unreadable(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    settings = _settings(tmp_path)
    root = _spark_checkpoint(settings, "readings", {0: ['{"sensor-data":{"0":1}}']}, [0])
    (root / "offsets" / "0").write_text("v2\n{}\n" + '{"sensor-data":{"0":1}}')
    with pytest.raises(UnreadableCheckpointError, match="newer Spark"):
        read_checkpoint(settings, "readings")


def test_doctor_without_a_checkpoint_says_where_the_first_start_reads(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    settings = _settings(tmp_path)
    readings = check_checkpoint("readings", settings)
    assert readings.ok and readings.detail == (
        "none yet: the first start reads sensor-data from the earliest offset Kafka retains"
    )
    assert check_checkpoint("aggregates_lake", settings).ok


def test_doctor_names_both_topics_when_kafka_topic_changed(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    settings = _settings(tmp_path)
    _spark_checkpoint(settings, "readings", {0: ['{"old-topic":{"0":12,"1":9,"2":15}}']}, [0])
    check = check_checkpoint("readings", settings)
    assert not check.ok
    assert "was written for topic old-topic, the job now reads sensor-data" in check.detail
    assert check.fix is not None
    assert check.fix.startswith("set kafka.topic back to old-topic, or start over with `sensorpipe stream --reset`")


def _delta(version: int) -> str:
    """A Delta streaming source's offset, as Delta 4.4 writes it in a checkpoint."""
    return json.dumps(
        {
            "sourceVersion": 1,
            "reservoirId": "0c6e4e0a-5d4f-4a51-9d8e-1f0a3c9a7b11",
            "reservoirVersion": version,
            "index": -1,
            "isStartingVersion": False,
        }
    )


def test_doctor_on_the_aggregates_checkpoints(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    settings = _settings(tmp_path)
    _spark_checkpoint(settings, "aggregates_lake", {0: [_delta(1)], 1: [_delta(3)]}, [0, 1])
    assert check_checkpoint("aggregates_lake", settings).detail == "batch 1, up to version 3 of the lake's raw"
    other = _settings(tmp_path / "other")
    _spark_checkpoint(other, "aggregates_lake", {0: [_delta(0), _delta(0)]}, [0])
    two = check_checkpoint("aggregates_lake", other)
    assert not two.ok and "written for a query with 2 sources; this one has 1" in two.detail
    assert two.fix is not None and two.fix.startswith("run the sensorpipe version that wrote it, or start over")


def test_doctor_reports_agg_1m_without_its_checkpoint(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    settings = _settings(tmp_path)
    assert check_checkpoint("aggregates_lake", settings).ok  # no table yet
    minute = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    write_dataset(settings, AGG_1M, pa.table({"bucket": pa.array([minute], pa.timestamp("us", tz="UTC"))}))
    check = check_checkpoint("aggregates_lake", settings)
    assert not check.ok
    assert "holds the minutes of an earlier run" in check.detail
    assert "would append every minute again" in check.detail
    assert check.fix is not None and "`sensorpipe stream --reset`, which empties agg_1m too" in check.fix
    assert check_checkpoint("readings", settings).ok  # raw records Kafka offsets: no checkpoint of its own to lose


def test_doctor_tells_a_kafka_checkpoint_from_a_lake_one(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    settings = _settings(tmp_path)
    _spark_checkpoint(settings, "aggregates_lake", {0: ['{"sensor-data":{"0":12}}']}, [0])
    check = check_checkpoint("aggregates_lake", settings)
    assert not check.ok and "was written for another source than the lake's Delta table raw" in check.detail
    _spark_checkpoint(settings, "readings", {0: ['{"logOffset":0}']}, [0])
    check = check_checkpoint("readings", settings)
    assert not check.ok and "was written for another source than Kafka" in check.detail


def test_a_query_started_but_without_a_batch(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    settings = _settings(tmp_path)
    _spark_checkpoint(settings, "aggregates_lake", {}, [])
    check = check_checkpoint("aggregates_lake", settings)
    assert check.ok and check.detail == "no batch yet: the first batch reads the lake's raw from its beginning"


def test_records_behind_counts_what_a_restart_has_yet_to_read() -> None:
    marks = {0: (0, 100), 1: (40, 90), 2: (0, 7)}
    # partition 1 resumes below what Kafka retains (reads from 40), partition 2 is new (read from its start)
    assert records_behind({0: 100, 1: 10}, marks) == 0 + 50 + 7
    assert records_behind({}, marks) == 100 + 50 + 7
    assert records_behind({0: 60, 1: 90, 2: 7}, marks) == 40


def test_entry_offsets_of_a_kafka_batch() -> None:
    entry = parse_offsets('v1\n{"batchWatermarkMs":0}\n{"sensor-data":{"1":5,"0":9}}', 3, "offsets/3")
    assert entry_offsets(entry) == {"sensor-data": {0: 9, 1: 5}}
    assert entry_offsets(None) == {}
