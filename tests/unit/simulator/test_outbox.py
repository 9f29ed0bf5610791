"""The simulator's own buffer: bounded, every message counted exactly once, unconfirmed ones resent in order."""

from __future__ import annotations

from sensorpipe.simulator.publisher import Outbox, Stats
from sensorpipe.simulator.readings import Malformed, Message


def _message(n: int, readings: int = 1, malformed: Malformed | None = None) -> Message:
    return Message("sensors/x/data", str(n).encode(), readings, malformed)


def _balanced(box: Outbox) -> bool:
    return box.sent == box.acked + box.dropped + box.held


def test_the_bound_drops_the_newest_messages_and_counts_them_with_their_readings() -> None:
    box = Outbox(bound=3)
    accepted = [box.offer(_message(n, readings=5)) for n in range(5)]
    assert accepted == [True, True, True, False, False]
    assert (box.sent, box.dropped, box.held) == (5, 2, 3)
    assert (box.readings, box.readings_dropped) == (25, 10)
    assert [m.payload for m in box.queue] == [b"0", b"1", b"2"]
    assert _balanced(box)


def test_messages_with_paho_count_against_the_bound() -> None:
    box = Outbox(bound=2)
    box.offer(_message(0))
    box.pending[7] = box.queue.popleft()
    box.offer(_message(1))
    assert not box.offer(_message(2))
    assert box.dropped == 1
    assert _balanced(box)


def test_acknowledgements_are_counted_once_and_unknown_ids_are_ignored() -> None:
    box = Outbox(bound=10)
    for n in range(3):
        box.offer(_message(n, readings=2))
    box.pending[1] = box.queue.popleft()
    box.ack(box.queue.popleft())
    box.ack_mid(1)
    box.ack_mid(1)
    box.ack_mid(99)
    assert (box.acked, box.readings_acked, box.held) == (2, 4, 1)
    assert _balanced(box)


def test_a_broken_connection_puts_unconfirmed_messages_back_in_front_in_their_order() -> None:
    box = Outbox(bound=10)
    for n in range(5):
        box.offer(_message(n))
    for mid in (40, 41, 42):
        box.pending[mid] = box.queue.popleft()
    box.ack_mid(41)
    assert box.requeue() == 2
    assert [m.payload for m in box.queue] == [b"0", b"2", b"3", b"4"]
    assert not box.pending
    assert _balanced(box)


def test_malformed_messages_are_counted() -> None:
    box = Outbox(bound=10)
    box.offer(_message(0, malformed=Malformed.EMPTY))
    box.offer(_message(1))
    assert box.malformed == 1


def test_stats_survive_the_shared_row_and_sum_over_processes() -> None:
    a = Stats(sent=10, acked=7, dropped=1, readings=100, readings_acked=70, readings_dropped=10, elapsed_s=2.5)
    b = Stats(sent=5, acked=5, readings=50, readings_acked=50, connected=1, elapsed_s=3.0)
    assert Stats.from_row(list(a.as_row())) == a
    total = Stats.combine([a, b])
    assert (total.sent, total.acked, total.dropped, total.unacked) == (15, 12, 1, 2)
    assert (total.readings_unacked, total.connected, total.elapsed_s) == (20, 1, 3.0)
    assert not total.lossless
    assert b.lossless
    assert total.as_json()["readings_per_s"] == round(120 / 3.0, 1)
