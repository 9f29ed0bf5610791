"""Diagnostics: checks that say ✓ or ✗ with the fix, run by one runner.

One framework serves two commands. A `CheckSpec` names a check and what it needs; `run_checks` runs
them concurrently, each with a timeout, and turns one that raises or hangs into a ✗ of its own.
`sensorpipe doctor` runs `environment.doctor_checks` (one module per group of the ten problems);
`sensorpipe stack check` runs `roundtrip.roundtrip_checks` (a real round trip through each service).

Importing the package loads only the framework: the checks load every service's client library
(psycopg, boto3, librdkafka), so the CLI imports them when a command runs them, not when it starts.
"""

from __future__ import annotations

from sensorpipe.doctor.check import Check, CheckSpec
from sensorpipe.doctor.runner import run_checks

__all__ = ["Check", "CheckSpec", "run_checks"]
