"""Find out, before starting a service, whether its port is free, and if not who holds it."""

from __future__ import annotations

import socket
from pathlib import Path


def is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def holder(port: int) -> str | None:
    """`pid 123 (mosquitto)` for the process listening on `port`, when /proc lets us see it."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{inode}]")
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if str(fd.readlink()) in inodes:
                    name = (proc / "comm").read_text().strip()
                    return f"pid {proc.name} ({name})"
        except OSError:
            continue
    return None


def ephemeral_range() -> tuple[int, int] | None:
    """The ports the kernel hands to outgoing connections (/proc/sys/net/ipv4/ip_local_port_range)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return None


def taken_by(port: int) -> str:
    """` by pid 123 (java)`, or why a port no program listens on is taken; empty when neither is known.

    A port inside the ephemeral range can be held by any outgoing connection for a while, so a
    service placed there fails at random; the fix is to move it below the range, not to retry.
    """
    who = holder(port)
    if who:
        return f" by {who}"
    span = ephemeral_range()
    if span and span[0] <= port <= span[1]:
        return (
            f", most likely by an outgoing connection: it lies in the kernel's ephemeral range {span[0]}-{span[1]},"
            f" which outgoing connections draw from, so move sensorpipe's ports below {span[0]}"
        )
    return ""
