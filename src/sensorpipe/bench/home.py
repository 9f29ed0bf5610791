"""A pipeline of the bench's own: a fresh home with every port counted from one base.

The bench measures cold start, so it needs a stack that has never run; and it must not disturb (or be
disturbed by) a stack on the default ports that a user keeps running. Ports: MQTT base+1, Kafka base+2
(controller base+3), PostgreSQL base+4, S3 base+10 (SeaweedFS also takes +11…+14 and each +10000), bridge
metrics base+310, stream metrics base+311.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

CONFIG = """\
[stack]
home = "{home}"
[mqtt]
port = {mqtt}
[kafka]
bootstrap_servers = "127.0.0.1:{kafka}"
controller_port = {controller}
[postgres]
port = {postgres}
[s3]
endpoint = "http://127.0.0.1:{s3}"
[lake]
backend = "{lake}"
[bridge]
metrics_port = {bridge_metrics}
[stream]
metrics_port = {stream_metrics}
"""


def private_config(prefix: str, base_port: int, lake: str = "s3") -> Path:
    """sensorpipe.toml in a new home (readable by the `postgres` account) for the ports above."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    home.chmod(0o755)
    config = home / "sensorpipe.toml"
    config.write_text(
        CONFIG.format(
            home=home,
            mqtt=base_port + 1,
            kafka=base_port + 2,
            controller=base_port + 3,
            postgres=base_port + 4,
            s3=base_port + 10,
            lake=lake,
            bridge_metrics=base_port + 310,
            stream_metrics=base_port + 311,
        )
    )
    return config


__all__ = ["private_config"]
