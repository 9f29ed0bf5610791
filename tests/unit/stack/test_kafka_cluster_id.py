"""KRaft cluster ids: the storage tool reads an id starting with `-` as an option, so none may."""

from __future__ import annotations

import re

from sensorpipe.stack.kafka import new_cluster_id


def test_cluster_ids_are_valid_and_never_start_with_a_dash() -> None:
    ids = {new_cluster_id() for _ in range(5000)}  # ~1 in 64 raw ids starts with "-": 5000 draws would hit it
    assert len(ids) == 5000
    assert all(re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]{21}", cluster_id) for cluster_id in ids)
