"""Resolve the pinned jar sets with Maven into a cache directory, and check them against pyspark.

Each set is a small POM beside this module. Resolution is idempotent: a set lives in
`<cache>/jars/<name>-<fingerprint of its POM>/` with a `manifest.json` written last, so a
half-finished fetch is never mistaken for a complete one and editing a POM fetches anew.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from sensorpipe.errors import SensorpipeError

logger = logging.getLogger(__name__)

_POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}
_JAR_VERSION = re.compile(r"^(?P<artifact>.+?)-(?P<version>\d[\w.\-]*)\.jar$")


class JarsError(SensorpipeError):
    """A jar set is missing, cannot be resolved, or disagrees with the installed pyspark."""


@dataclass(frozen=True)
class JarSet:
    name: str
    pom: Path

    def properties(self) -> dict[str, str]:
        """The `<properties>` of the POM: the pinned versions."""
        props = ET.parse(self.pom).getroot().find("m:properties", _POM_NS)
        if props is None:
            return {}
        return {child.tag.split("}", 1)[1]: (child.text or "").strip() for child in props}

    def fingerprint(self) -> str:
        return hashlib.sha256(self.pom.read_bytes()).hexdigest()[:12]

    def directory(self, cache_dir: Path) -> Path:
        return cache_dir / "jars" / f"{self.name}-{self.fingerprint()}"


_HERE = Path(__file__).parent
JAR_SETS: dict[str, JarSet] = {name: JarSet(name, _HERE / name / "pom.xml") for name in ("spark", "kafka")}


def resolved(name: str, cache_dir: Path) -> list[Path]:
    """The jars of a fetched set, or a JarsError that says how to fetch it."""
    directory = JAR_SETS[name].directory(cache_dir)
    manifest = directory / "manifest.json"
    if not manifest.is_file():
        raise JarsError(f"the {name} jar set is not fetched into {directory}: run `sensorpipe jars fetch`")
    jars = [directory / jar for jar in json.loads(manifest.read_text())["jars"]]
    missing = [jar.name for jar in jars if not jar.is_file()]
    if missing:
        raise JarsError(f"{directory} lacks {', '.join(missing)}: run `sensorpipe jars fetch --force`")
    return jars


def fetch(name: str, cache_dir: Path, *, force: bool = False, log: Callable[[str], None] = logger.info) -> list[Path]:
    """Resolve one set transitively with Maven unless it already is; returns its jars."""
    jar_set = JAR_SETS[name]
    directory = jar_set.directory(cache_dir)
    if not force:
        try:
            jars = resolved(name, cache_dir)
        except JarsError:
            pass
        else:
            log(f"{name}: {len(jars)} jars already in {directory}")
            return jars
    mvn = shutil.which("mvn")
    if mvn is None:
        raise JarsError("Maven (mvn) is not installed: run `scripts/bootstrap.sh` or `apt-get install maven`")
    log(f"{name}: resolving {jar_set.pom.name} with Maven ...")
    with tempfile.TemporaryDirectory() as tmp:
        classpath_file = Path(tmp) / "classpath.txt"
        result = subprocess.run(
            [
                mvn,
                "-B",
                "-q",
                "-f",
                str(jar_set.pom),
                "dependency:build-classpath",
                "-DincludeScope=runtime",
                f"-Dmdep.outputFile={classpath_file}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0 or not classpath_file.is_file():
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
            raise JarsError(f"Maven could not resolve the {name} jar set ({jar_set.pom}):\n{tail}")
        sources = [Path(p) for p in classpath_file.read_text().strip().split(os.pathsep) if p]
    staging = directory.with_name(directory.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for source in sources:
        _link_or_copy(source, staging / source.name)
    (staging / "manifest.json").write_text(
        json.dumps(
            {
                "pom": str(jar_set.pom),
                "properties": jar_set.properties(),
                "jars": sorted(s.name for s in sources),
            },
            indent=2,
        )
    )
    shutil.rmtree(directory, ignore_errors=True)
    staging.rename(directory)
    log(f"{name}: {len(sources)} jars in {directory}")
    return resolved(name, cache_dir)


def _link_or_copy(source: Path, target: Path) -> None:
    """Hard links keep the ~700 MB AWS SDK bundle from being stored twice."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _jar_versions(directory: Path) -> dict[str, str]:
    versions = {}
    for jar in directory.glob("*.jar"):
        match = _JAR_VERSION.match(jar.name)
        if match:
            versions[match["artifact"]] = match["version"]
    return versions


def pyspark_jars_dir() -> Path:
    try:
        import pyspark
    except ImportError as e:
        raise JarsError("pyspark is not installed: run `scripts/bootstrap.sh`") from e
    return Path(pyspark.__file__).parent / "jars"


def check_spark_jars(cache_dir: Path | None = None) -> list[str]:
    """Problems between the installed pyspark and the pinned Spark set, each with its fix; [] when they fit."""
    props = JAR_SETS["spark"].properties()
    problems = []
    try:
        installed = version("pyspark")
    except PackageNotFoundError:
        return ["pyspark is not installed: run `scripts/bootstrap.sh`"]
    pom = JAR_SETS["spark"].pom
    if installed != props["spark.version"]:
        problems.append(
            f"pyspark {installed} is installed but the connector jars are pinned to Spark {props['spark.version']}"
            f" ({pom}): reinstall the pinned pyspark with `pip install pyspark=={props['spark.version']}`,"
            f" or move spark.version in that POM and pyproject.toml together"
        )
    bundled = _jar_versions(pyspark_jars_dir())
    hadoop = bundled.get("hadoop-client-api")
    if hadoop and hadoop != props["hadoop.version"]:
        problems.append(
            f"pyspark bundles Hadoop {hadoop} but hadoop-aws is pinned to {props['hadoop.version']} ({pom}):"
            f" set hadoop.version to {hadoop}"
        )
    scala = next((v for a, v in bundled.items() if a == "scala-library"), None)
    if scala and not scala.startswith(props["scala.binary.version"] + "."):
        problems.append(
            f"pyspark is built for Scala {scala} but the connector for Scala {props['scala.binary.version']}:"
            f" set scala.binary.version in {pom}"
        )
    if cache_dir is not None:
        try:
            fetched = {jar.name for jar in resolved("spark", cache_dir)}
        except JarsError as e:
            problems.append(str(e))
        else:
            clashes = sorted(name for name in fetched if (m := _JAR_VERSION.match(name)) and m["artifact"] in bundled)
            if clashes:
                problems.append(
                    f"jars also shipped by pyspark (two copies of one class): {', '.join(clashes)};"
                    f" exclude them in {pom}"
                )
    return problems
