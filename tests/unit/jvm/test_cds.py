"""The driver's class archive: written by one process, then mapped by every start on the same Java and jars."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from sensorpipe.jvm import cds


def jars(tmp_path: Path) -> list[str]:
    paths = [tmp_path / "a.jar", tmp_path / "b.jar"]
    for path in paths:
        path.write_bytes(b"jar")
    return ["pyspark 4.2.0", *map(str, paths)]


def test_the_first_start_writes_the_archive_and_the_others_wait_for_it(tmp_path: Path) -> None:
    class_path = jars(tmp_path)
    archive = cds.archive(tmp_path / "cache", class_path)
    first = cds.driver_options(tmp_path / "cache", class_path)
    assert first.startswith(f"-XX:ArchiveClassesAtExit={archive} ")
    assert cds.driver_options(tmp_path / "cache", class_path) == "", "one writer at a time"
    archive.write_bytes(b"archive")
    mapped = cds.driver_options(tmp_path / "cache", class_path)
    assert mapped.startswith(f"-XX:SharedArchiveFile={archive} ")
    assert "-Xlog:cds=off" in mapped and "-Xlog:cds+dynamic=off" in mapped, "no JVM warning in a command's output"


def test_a_claim_whose_jvm_never_wrote_the_archive_is_taken_over(tmp_path: Path) -> None:
    class_path = jars(tmp_path)
    assert cds.driver_options(tmp_path, class_path).startswith("-XX:ArchiveClassesAtExit=")
    lock = cds.archive(tmp_path, class_path).with_suffix(".lock")
    old = time.time() - cds.STALE_LOCK_S - 1
    os.utime(lock, (old, old))
    assert cds.driver_options(tmp_path, class_path).startswith("-XX:ArchiveClassesAtExit=")


def test_another_jar_or_java_means_another_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class_path = jars(tmp_path)
    before = cds.archive(tmp_path, class_path)
    Path(class_path[1]).write_bytes(b"a newer jar")
    changed = cds.archive(tmp_path, class_path)
    assert changed != before
    assert cds.archive(tmp_path, [*class_path, str(tmp_path / "c.jar")]) != changed
    java_home = tmp_path / "jdk"
    (java_home / "bin").mkdir(parents=True)
    (java_home / "bin" / "java").write_bytes(b"")
    monkeypatch.setenv("JAVA_HOME", str(java_home))
    assert cds.archive(tmp_path, class_path) != changed
