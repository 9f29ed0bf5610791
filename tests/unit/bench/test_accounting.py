"""Loss and duplicate accounting of `sensorpipe bench`: what is lost, stored twice, or stored unasked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from sensorpipe.bench.accounting import epoch_ms, from_counts


def test_epoch_ms_from_timestamptz_naive_and_float_seconds() -> None:
    moment = datetime(2024, 4, 12, 11, 35, 12, 123000, tzinfo=UTC)
    assert epoch_ms(moment) == 1712921712123
    assert epoch_ms(moment.astimezone(timezone(timedelta(hours=2)))) == 1712921712123
    assert epoch_ms(moment.replace(tzinfo=None)) == 1712921712123
    assert epoch_ms(1712921712.123) == 1712921712123


def test_from_counts_takes_the_sinks_own_counts() -> None:
    clean = from_counts(100, db_rows=100, db_distinct=100, lake_rows=100, lake_distinct=100)
    assert clean.ok
    twice = from_counts(100, db_rows=100, db_distinct=100, lake_rows=103, lake_distinct=100)
    assert (twice.duplicated_lake, twice.lost_lake, twice.ok) == (3, 0, False)
    short = from_counts(100, db_rows=97, db_distinct=97, lake_rows=100, lake_distinct=100)
    assert (short.lost_db, short.lost_lake, short.unexpected) == (3, 0, 0)
    extra = from_counts(100, db_rows=102, db_distinct=102, lake_rows=101, lake_distinct=101)
    assert (extra.unexpected, extra.ok) == (2, True)


def test_from_counts_refuses_impossible_counts() -> None:
    with pytest.raises(ValueError, match="negative"):
        from_counts(-1, db_rows=0, db_distinct=0, lake_rows=0, lake_distinct=0)
    with pytest.raises(ValueError, match="distinct"):
        from_counts(1, db_rows=1, db_distinct=2, lake_rows=1, lake_distinct=1)
