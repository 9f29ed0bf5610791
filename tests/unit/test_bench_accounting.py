"""Loss and duplicate accounting of `sensorpipe bench`: what is lost, stored twice, or stored unasked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from sensorpipe.ops.bench.accounting import Key, account, epoch_ms, from_counts, tally

A, B, C, D = ("s1", 1000), ("s1", 1001), ("s2", 1000), ("s3", 5)


def test_everything_stored_once_is_ok() -> None:
    result = account({A, B, C}, [A, B, C], [C, B, A])
    assert (result.acknowledged, result.stored_db, result.stored_lake) == (3, 3, 3)
    assert (result.lost_db, result.lost_lake, result.duplicated_db, result.duplicated_lake) == (0, 0, 0, 0)
    assert result.unexpected == 0
    assert result.exact
    assert result.ok


def test_losses_are_counted_per_sink() -> None:
    result = account({A, B, C}, [A], [A, B])
    assert (result.lost_db, result.lost_lake) == (2, 1)
    assert not result.ok


def test_lake_duplicates_count_extra_copies() -> None:
    result = account({A, B}, [A, B], [A, A, A, B])
    assert result.stored_lake == 4
    assert result.duplicated_lake == 2
    assert result.lost_lake == 0
    assert not result.ok


def test_database_rows_counted_per_key_from_a_query_result() -> None:
    rows: dict[Key, int] = {A: 1, B: 2, C: 0}  # select sensor_id, time, count(*) … group by 1, 2
    result = account({A, B, C}, rows, [A, B, C])
    assert (result.stored_db, result.duplicated_db, result.lost_db) == (3, 1, 1)
    assert not result.ok


def test_unacknowledged_but_stored_is_unexpected_not_a_loss() -> None:
    result = account({A, B}, [A, B, D], [A, B, D])
    assert result.unexpected == 1
    assert (result.lost_db, result.lost_lake) == (0, 0)
    assert result.ok


def test_count_only_acknowledgement_compares_distinct_keys() -> None:
    exact = account(3, [A, B, C], [A, B, C, C])
    assert not exact.exact
    assert (exact.lost_db, exact.lost_lake, exact.duplicated_lake, exact.unexpected) == (0, 0, 1, 0)
    assert not exact.ok  # the lake's duplicate
    short = account(4, [A, B], [A, B, C])
    assert (short.lost_db, short.lost_lake, short.unexpected) == (2, 1, 0)
    extra = account(2, [A, B, D], [A, B])
    assert (extra.lost_db, extra.unexpected) == (0, 1)


def test_negative_count_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        account(-1, [], [])


def test_tally_from_keys_and_from_counts() -> None:
    assert tally([A, A, B]) == {A: 2, B: 1}
    assert tally({A: 2, B: 0}) == {A: 2}


def test_epoch_ms_from_timestamptz_naive_and_float_seconds() -> None:
    moment = datetime(2024, 4, 12, 11, 35, 12, 123000, tzinfo=UTC)
    assert epoch_ms(moment) == 1712921712123
    assert epoch_ms(moment.astimezone(timezone(timedelta(hours=2)))) == 1712921712123
    assert epoch_ms(moment.replace(tzinfo=None)) == 1712921712123
    assert epoch_ms(1712921712.123) == 1712921712123


def test_from_counts_takes_the_sinks_own_counts() -> None:
    clean = from_counts(100, db_rows=100, db_distinct=100, lake_rows=100, lake_distinct=100)
    assert clean.ok
    assert not clean.exact
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
