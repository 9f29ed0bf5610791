"""Checkpoint locations are stable, and a failure caused by a checkpoint is explained with its two ways out."""

from __future__ import annotations

from pathlib import Path

import pytest

from sensorpipe.config import load_settings
from sensorpipe.stream.checkpoints import QUERIES, CheckpointError, checkpoint_uri, checkpoints, explain_failure


def test_checkpoints_live_beside_the_lake_unless_configured(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    s3 = load_settings()
    assert checkpoint_uri(s3, "readings") == "s3a://sensordata/_checkpoints/readings"
    local = load_settings({"lake": {"backend": "local", "local_dir": tmp_path}})
    assert checkpoint_uri(local, "aggregates") == f"{tmp_path.as_uri()}/_checkpoints/aggregates"
    custom = load_settings({"stream": {"checkpoint_base": "s3a://other/ckpt/"}})
    assert [checkpoint_uri(custom, q) for q in QUERIES] == [f"s3a://other/ckpt/{q}" for q in QUERIES]
    with pytest.raises(ValueError, match="unknown query"):
        checkpoint_uri(s3, "lake2")


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
    message = explain_failure(load_settings(), "aggregates", spark_error)
    assert message is not None
    assert "s3a://sensordata/_checkpoints/aggregates" in message
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
