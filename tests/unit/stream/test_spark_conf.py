"""`spark_conf`: the Spark properties derived from settings, checked without a JVM."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from sensorpipe.config import Settings, load_settings
from sensorpipe.stream import redacted, spark_conf
from sensorpipe.stream.session import is_local_master, on_loopback, runs_in_process

S3A = "spark.hadoop.fs.s3a."
JAR_NAMES = ["spark-sql-kafka-0-10_2.13-4.2.0.jar", "hadoop-aws-3.5.0.jar", "bundle-2.35.4.jar"]


@pytest.fixture
def jars(tmp_path: Path) -> list[Path]:
    """Jar paths as `resolved()` returns them; spark_conf only names them, so they need not exist."""
    return [tmp_path / "jars" / name for name in JAR_NAMES]


@pytest.fixture
def settings_for(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """Settings from flags only: no environment variable or ./sensorpipe.toml of the caller leaks in."""
    clean_env.chdir(tmp_path)

    def make(**sections: dict[str, Any]) -> Settings:
        return load_settings(sections)

    return make


def test_s3a_comes_from_the_s3_section(settings_for: Any, jars: list[Path]) -> None:
    settings = settings_for(
        s3={
            "endpoint": "http://127.0.0.1:28333",
            "access_key": "lake-writer",
            "secret_key": "not-in-logs",
            "region": "eu-test-1",
        }
    )
    conf = spark_conf(settings, jars)
    assert conf[f"{S3A}endpoint"] == "http://127.0.0.1:28333"
    assert conf[f"{S3A}access.key"] == "lake-writer"
    assert conf[f"{S3A}secret.key"] == "not-in-logs"
    assert conf[f"{S3A}endpoint.region"] == "eu-test-1"
    assert conf[f"{S3A}path.style.access"] == "true"
    assert conf[f"{S3A}connection.ssl.enabled"] == "false"
    assert conf[f"{S3A}aws.credentials.provider"] == "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
    assert conf[f"{S3A}impl"] == "org.apache.hadoop.fs.s3a.S3AFileSystem"


@pytest.mark.parametrize(
    ("endpoint", "ssl"),
    [("https://s3.example.com", "true"), ("HTTPS://s3.example.com:9000", "true"), ("minio:9000", "false")],
)
def test_tls_follows_the_endpoint_scheme(settings_for: Any, jars: list[Path], endpoint: str, ssl: str) -> None:
    conf = spark_conf(settings_for(s3={"endpoint": endpoint}), jars)
    assert conf[f"{S3A}connection.ssl.enabled"] == ssl
    assert conf[f"{S3A}endpoint"].lower().startswith("https://" if ssl == "true" else "http://")


def test_secrets_are_masked_for_logs(settings_for: Any, jars: list[Path]) -> None:
    conf = spark_conf(settings_for(s3={"access_key": "key-id", "secret_key": "s3cr3t"}), jars)
    shown = redacted(conf)
    assert "s3cr3t" not in repr(shown)
    assert "key-id" not in repr(shown)
    assert shown[f"{S3A}endpoint"] == conf[f"{S3A}endpoint"]


def test_a_local_job_binds_to_loopback_only(settings_for: Any, jars: list[Path]) -> None:
    conf = spark_conf(settings_for(), jars)
    assert conf["spark.master"] == "local[*]"
    assert conf["spark.driver.bindAddress"] == "127.0.0.1"
    assert conf["spark.driver.host"] == "127.0.0.1"


def test_a_cluster_driver_is_left_reachable(settings_for: Any, jars: list[Path]) -> None:
    conf = spark_conf(settings_for(spark={"master": "spark://spark-master:7077"}), jars)
    assert conf["spark.master"] == "spark://spark-master:7077"
    assert "spark.driver.bindAddress" not in conf
    assert "spark.driver.host" not in conf


@pytest.mark.parametrize("master", ["spark://127.0.0.1:7077", "spark://localhost:7077", "spark://[::1]:7077"])
def test_a_standalone_cluster_on_loopback_keeps_the_driver_on_loopback(
    settings_for: Any, jars: list[Path], master: str
) -> None:
    conf = spark_conf(settings_for(spark={"master": master}), jars)
    assert conf["spark.driver.bindAddress"] == "127.0.0.1"
    assert conf["spark.driver.host"] == "127.0.0.1"
    assert "spark.jars" in conf  # executors are JVMs of their own: the jars are shipped


@pytest.mark.parametrize(
    ("master", "loopback"),
    [
        ("local[*]", True),
        ("local-cluster[2,1,1024]", True),
        ("spark://127.0.0.1:7077", True),
        ("spark://127.0.0.1:7077,localhost:7078", True),
        ("spark://127.0.0.1:7077,spark-master:7077", False),
        ("spark://192.0.2.10:7077", False),
        ("spark://localhost.example.com:7077", False),
        ("k8s://https://127.0.0.1:6443", False),
        ("yarn", False),
    ],
)
def test_which_masters_keep_everything_on_loopback(master: str, loopback: bool) -> None:
    assert on_loopback(master) is loopback


def test_ui_is_off_unless_a_port_is_set(settings_for: Any, jars: list[Path]) -> None:
    off = spark_conf(settings_for(), jars)
    assert off["spark.ui.enabled"] == "false"
    assert "spark.ui.port" not in off
    on = spark_conf(settings_for(spark={"ui_port": 24040}), jars)
    assert on["spark.ui.enabled"] == "true"
    assert on["spark.ui.port"] == "24040"
    assert on["spark.driver.bindAddress"] == "127.0.0.1"


def test_resources_and_time_zone(settings_for: Any, jars: list[Path]) -> None:
    conf = spark_conf(settings_for(spark={"driver_memory": "2g", "shuffle_partitions": 8}), jars)
    assert conf["spark.driver.memory"] == "2g"
    assert conf["spark.sql.shuffle.partitions"] == "8"
    assert conf["spark.sql.session.timeZone"] == "UTC"


def test_in_process_executors_get_the_jars_on_the_driver_class_path(settings_for: Any, jars: list[Path]) -> None:
    conf = spark_conf(settings_for(spark={"master": "local[2]"}), jars)
    assert conf["spark.driver.extraClassPath"].split(os.pathsep) == [str(jar.resolve()) for jar in jars]
    assert "spark.jars" not in conf
    assert not any(key.startswith("spark.jars.") for key in conf)  # no Ivy: no packages, no repositories


@pytest.mark.parametrize("master", ["spark://spark-master:7077", "local-cluster[2,1,1024]", "k8s://https://k8s:6443"])
def test_other_masters_ship_the_jars(settings_for: Any, jars: list[Path], master: str) -> None:
    conf = spark_conf(settings_for(spark={"master": master}), jars)
    assert conf["spark.jars"].split(",") == [str(jar.resolve()) for jar in jars]
    assert "spark.driver.extraClassPath" not in conf
    assert not any(key.startswith("spark.jars.") for key in conf)


def test_jar_paths_are_absolute(settings_for: Any, tmp_path: Path) -> None:
    conf = spark_conf(settings_for(spark={"master": "spark://m:7077"}), [Path("jars/hadoop-aws-3.5.0.jar")])
    assert conf["spark.jars"] == str((tmp_path / "jars" / "hadoop-aws-3.5.0.jar").resolve())


@pytest.mark.parametrize(
    ("master", "local", "in_process"),
    [
        ("local", True, True),
        ("local[*]", True, True),
        ("local[4,2]", True, True),
        ("local-cluster[2,1,1024]", True, False),
        ("spark://127.0.0.1:7077", False, False),
        ("yarn", False, False),
    ],
)
def test_master_kinds(master: str, local: bool, in_process: bool) -> None:
    assert is_local_master(master) is local
    assert runs_in_process(master) is in_process


def test_workers_with_the_jars_get_them_on_the_class_path_instead_of_shipped(
    settings_for: Any, jars: list[Path]
) -> None:
    conf = spark_conf(settings_for(spark={"master": "spark://spark-master:7077", "jars_on_workers": "true"}), jars)
    paths = [str(jar.resolve()) for jar in jars]
    assert conf["spark.executor.extraClassPath"].split(os.pathsep) == paths
    assert conf["spark.driver.extraClassPath"].split(os.pathsep) == paths
    assert "spark.jars" not in conf
