"""The TimescaleDB path, by the exact statements `db migrate` issues (their effect: tests/integration/storage)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sensorpipe.config import TimescaleSettings
from sensorpipe.storage.timescale import timescale_statements


def test_defaults_make_hypertables_and_a_compression_policy_without_retention() -> None:
    assert timescale_statements(TimescaleSettings(), compression_enabled=False) == [
        "select create_hypertable('sensor_data', 'time', chunk_time_interval => interval '1 day',"
        " if_not_exists => true, migrate_data => true)",
        "select set_chunk_time_interval('sensor_data', interval '1 day')",
        "select create_hypertable('sensor_data_1m', 'bucket', chunk_time_interval => interval '7 days',"
        " if_not_exists => true, migrate_data => true)",
        "select remove_compression_policy('sensor_data', if_exists => true)",
        "alter table sensor_data set (timescaledb.compress, timescaledb.compress_segmentby = 'sensor_id',"
        " timescaledb.compress_orderby = 'time desc')",
        "select add_compression_policy('sensor_data', interval '7 days')",
        "select remove_retention_policy('sensor_data', if_exists => true)",
    ]


def test_a_second_migrate_does_not_alter_compression_again_and_follows_changed_policies() -> None:
    settings = TimescaleSettings(chunk_interval="12 hours", compress_after="2 days", retention="90 days")
    statements = timescale_statements(settings, compression_enabled=True)
    assert not any(s.startswith("alter table") for s in statements)
    assert "select set_chunk_time_interval('sensor_data', interval '12 hours')" in statements
    assert statements[-3:] == [
        "select add_compression_policy('sensor_data', interval '2 days')",
        "select remove_retention_policy('sensor_data', if_exists => true)",
        "select add_retention_policy('sensor_data', interval '90 days')",
    ]


def test_empty_policies_are_removed_not_added() -> None:
    statements = timescale_statements(TimescaleSettings(compress_after=""), compression_enabled=True)
    assert "select remove_compression_policy('sensor_data', if_exists => true)" in statements
    assert not any("add_compression_policy" in s or "add_retention_policy" in s for s in statements)


@pytest.mark.parametrize("value", ["1 fortnight", "7", "1 day; drop table sensor_data", "'1 day'"])
def test_intervals_are_checked_before_any_sql_is_built(value: str) -> None:
    with pytest.raises(ValidationError, match="is not an interval"):
        TimescaleSettings(retention=value)
