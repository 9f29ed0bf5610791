"""A stack of its own for a benchmark: fresh home, ports from a base, so a stack on the defaults keeps running."""

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
"""


def private_config(prefix: str, base_port: int, lake: str = "s3") -> Path:
    """sensorpipe.toml in a new home (readable by the `postgres` account) for ports base+1 … base+10."""
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
        )
    )
    return config
