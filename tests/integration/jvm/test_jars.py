"""`sensorpipe jars fetch / check`: Maven resolution into the cache, idempotent, and checked against pyspark."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sensorpipe.config import load_settings
from sensorpipe.jvm import JAR_SETS, resolved
from tests.support import sensorpipe

pytestmark = pytest.mark.integration


def test_fetch_is_idempotent_and_resolves_the_pinned_set() -> None:
    first = sensorpipe("jars", "fetch")
    assert first.returncode == 0, first.stdout + first.stderr
    cache = load_settings().stack.cache_dir
    manifests = {name: JAR_SETS[name].directory(cache) / "manifest.json" for name in JAR_SETS}
    stamps = {name: os.stat(path).st_mtime_ns for name, path in manifests.items()}

    second = sensorpipe("jars", "fetch")
    assert second.returncode == 0, second.stdout + second.stderr
    assert {name: os.stat(path).st_mtime_ns for name, path in manifests.items()} == stamps

    spark = {jar.name for jar in resolved("spark", cache)}
    props = JAR_SETS["spark"].properties()
    assert f"spark-sql-kafka-0-10_2.13-{props['spark.version']}.jar" in spark
    assert f"spark-token-provider-kafka-0-10_2.13-{props['spark.version']}.jar" in spark
    assert f"hadoop-aws-{props['hadoop.version']}.jar" in spark
    assert any(name.startswith("kafka-clients-") for name in spark)
    assert any(name.startswith("commons-pool2-") for name in spark)
    assert any(name.startswith("bundle-2.") for name in spark)  # the AWS SDK v2 bundle hadoop-aws names
    assert any(name.startswith("postgresql-42.") for name in spark)
    assert not any(name.startswith(("hadoop-client-", "scala-library", "spark-core")) for name in spark)
    kafka = {jar.name for jar in resolved("kafka", cache)}
    assert f"kafka_2.13-{JAR_SETS['kafka'].properties()['kafka.version']}.jar" in kafka


def test_check_reports_the_fitting_set_as_json() -> None:
    result = sensorpipe("jars", "check", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report == {"ok": True, "problems": [], "versions": JAR_SETS["spark"].properties()}


def test_missing_jar_set_says_how_to_fetch(tmp_path: Path) -> None:
    result = sensorpipe("--set", f"stack.cache_dir={tmp_path}", "jars", "check")
    assert result.returncode == 1
    assert "the spark jar set is not fetched" in result.stdout
    assert "run `sensorpipe jars fetch`" in result.stdout
