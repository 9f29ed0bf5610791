"""What `stack up` says about a taken port: who listens on it, or that an outgoing connection holds it."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

from sensorpipe.stack import ports


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server


def test_a_listening_port_names_its_process(listener: socket.socket) -> None:
    port = listener.getsockname()[1]

    assert not ports.is_free("127.0.0.1", port)
    assert ports.taken_by(port).startswith(f" by pid {os.getpid()} (")


def test_a_port_held_by_an_outgoing_connection_points_below_the_ephemeral_range(listener: socket.socket) -> None:
    span = ports.ephemeral_range()
    assert span is not None, "Linux publishes /proc/sys/net/ipv4/ip_local_port_range"
    with socket.create_connection(listener.getsockname()) as client:
        port = client.getsockname()[1]

        assert not ports.is_free("127.0.0.1", port)
        said = ports.taken_by(port)

    assert "outgoing connection" in said
    assert f"ephemeral range {span[0]}-{span[1]}" in said
    assert f"below {span[0]}" in said
