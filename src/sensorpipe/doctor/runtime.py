"""Problem 1: a Java that Spark 4 runs on, and pyspark against the pinned connector jars."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from sensorpipe.config import Settings
from sensorpipe.doctor.check import Check, failed, passed, split_fix
from sensorpipe.jvm import JAR_SETS, check_spark_jars

MIN_JAVA = 17
_VERSION = re.compile(r'version "(?P<version>[^"]+)"')
INSTALL_JAVA = (
    f"install Java {MIN_JAVA} (`apt-get install openjdk-{MIN_JAVA}-jre-headless`, or `scripts/bootstrap.sh`)"
    " or point JAVA_HOME at one"
)


def java_major(version_output: str) -> int | None:
    """The major version in `java -version` output: `"17.0.15"` → 17, `"1.8.0_392"` → 8; None if absent."""
    match = _VERSION.search(version_output)
    if match is None:
        return None
    parts = re.split(r"[._+-]", match["version"])
    if not parts[0].isdigit():
        return None
    major = int(parts[0])
    if major == 1 and len(parts) > 1 and parts[1].isdigit():
        return int(parts[1])
    return major


def java_command() -> str | None:
    """The `java` Spark starts: `$JAVA_HOME/bin/java` when JAVA_HOME is set, else the one on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home:
        candidate = Path(home) / "bin" / "java"
        return str(candidate) if candidate.is_file() else None
    return shutil.which("java")


def check_java(_settings: Settings) -> Check:
    java = java_command()
    if java is None:
        where = (
            f"JAVA_HOME={os.environ['JAVA_HOME']} has no bin/java" if os.environ.get("JAVA_HOME") else "no java on PATH"
        )
        return failed("java", where, INSTALL_JAVA)
    result = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=10, check=False)
    output = result.stderr + result.stdout
    major = java_major(output)
    if major is None:
        first = output.strip().splitlines()[0] if output.strip() else f"exit code {result.returncode}"
        return failed("java", f"{java} -version printed no version ({first})", INSTALL_JAVA)
    line = output.strip().splitlines()[0]
    if major < MIN_JAVA:
        return failed("java", f"{java} is Java {major} ({line}); Spark 4 needs {MIN_JAVA} or later", INSTALL_JAVA)
    return passed("java", f"Java {major} at {java}")


def check_jars(settings: Settings) -> Check:
    problems = check_spark_jars(settings.stack.cache_dir)
    if problems:
        causes, fixes = zip(*(split_fix(p) for p in problems), strict=True)
        return failed("spark jars", "; ".join(causes), "; ".join(fixes))
    versions = JAR_SETS["spark"].properties()
    return passed(
        "spark jars", f"pyspark {versions['spark.version']}, Hadoop {versions['hadoop.version']}: jar set fits"
    )


__all__ = ["MIN_JAVA", "check_jars", "check_java", "java_command", "java_major"]
