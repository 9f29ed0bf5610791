"""The SparkSession of the stream job, configured from `Settings` in one place.

`spark_conf` is a pure function (settings and jar list in, Spark properties out), so what the job
runs with is tested without a JVM. `build_session` checks the pinned jar set against the installed
pyspark first, so a mismatch fails with its fix instead of a `NoClassDefFoundError` deep inside a
query (the original stack's problem 1), and S3A comes from the one `[s3]` section (problem 5).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sensorpipe.config import Settings
from sensorpipe.jvm import cds
from sensorpipe.jvm.jars import JarsError, check_spark_jars, resolved

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)

SPARK_LOG_LEVEL = "WARN"
S3A_FILESYSTEM = "org.apache.hadoop.fs.s3a.S3AFileSystem"
S3A_CREDENTIALS = "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"

JVM_OPTIONS = "-XX:-DontCompileHugeMethods"
"""Let the JIT compile methods over 8,000 bytes of bytecode, which Spark's generated code can exceed: the
decode's, when it was Column expressions (until 2026-12-08), was one such method, and left to the bytecode
interpreter it cost a third more CPU (2026-11-28: 3.1 s → 2.4 s for 300,000 readings). Kept for the
generated code of wide rows (Delta's log actions); not measured again since."""

_S3A = "spark.hadoop.fs.s3a."
_SECRET_KEYS = frozenset({f"{_S3A}access.key", f"{_S3A}secret.key"})
_MASK = "***"


def is_local_master(master: str) -> bool:
    """`local`, `local[*]`, `local[4,2]`, `local-cluster[...]`: every Spark process runs on this machine."""
    return master == "local" or master.startswith(("local[", "local-cluster["))


def runs_in_process(master: str) -> bool:
    """`local` and `local[...]`: the executors are threads of the driver JVM (not `local-cluster`)."""
    return master == "local" or master.startswith("local[")


def on_loopback(master: str) -> bool:
    """A local master, or a standalone master (`spark://h:p`, or `spark://h1:p1,h2:p2` for HA) on loopback only.

    Then the whole cluster runs on this machine and its executors reach a driver bound to loopback.
    """
    if is_local_master(master):
        return True
    if not master.startswith("spark://"):
        return False
    hosts = [entry.rpartition(":")[0].strip("[]") for entry in master.removeprefix("spark://").split(",")]
    return all(_is_loopback_host(host) for host in hosts)


def _is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def spark_conf(settings: Settings, jars: Sequence[Path]) -> dict[str, str]:
    """Every Spark property the job needs, derived from `settings`; `jars` is the resolved connector set.

    The jars come from the pinned, Maven-resolved set only (never `spark.jars.packages`: no Ivy at
    start). With executors in the driver JVM they go on its class path; `spark.jars` would make the
    local executor copy each of them (the AWS SDK bundle alone is ~690 MB) into a temp directory at
    every start. Any other master gets them as `spark.jars`, shipped to each executor by Spark, unless
    `spark.jars_on_workers` says the workers have them at the same paths (one image for driver and workers).
    """
    spark = settings.spark
    conf: dict[str, str] = {
        "spark.master": spark.master,
        "spark.driver.memory": spark.driver_memory,
        "spark.sql.shuffle.partitions": str(spark.shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        # Parquet timestamps as UTC-adjusted microseconds (readers see an instant), not legacy INT96.
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.ui.showConsoleProgress": "false",
        # Streaming queries cannot use adaptive execution; left on, Spark warns so at every query start.
        "spark.sql.adaptive.enabled": "false",
        # Queries share the cores by pool (stream/job.py), so the readings' batches do not queue behind a
        # whole aggregates stage: their latency is the one users see.
        "spark.scheduler.mode": "FAIR",
        # Delta Lake (the lake's tables): its SQL and catalog, as Delta documents them.
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        # Tasks that rebuild a table's snapshot from its log: Delta's default of 50 took ~2.6 s per
        # snapshot on 2 cores, as many as the shuffles use took ~0.65 s.
        "spark.databricks.delta.snapshotPartitions": str(spark.shuffle_partitions),
        "spark.driver.extraJavaOptions": JVM_OPTIONS,
        "spark.executor.extraJavaOptions": JVM_OPTIONS,
    }
    absolute = [str(jar.resolve()) for jar in jars]
    if runs_in_process(spark.master):
        conf["spark.driver.extraClassPath"] = os.pathsep.join(absolute)
    elif spark.jars_on_workers:
        conf["spark.driver.extraClassPath"] = os.pathsep.join(absolute)
        conf["spark.executor.extraClassPath"] = os.pathsep.join(absolute)
    else:
        conf["spark.jars"] = ",".join(absolute)
    if on_loopback(spark.master):
        # Nothing of a job on this machine listens beyond loopback; a remote cluster's driver must stay reachable.
        conf["spark.driver.bindAddress"] = settings.stack.bind_host
        conf["spark.driver.host"] = settings.stack.bind_host
    if spark.ui_port is None:
        conf["spark.ui.enabled"] = "false"
    else:
        conf["spark.ui.enabled"] = "true"
        conf["spark.ui.port"] = str(spark.ui_port)
    conf.update(s3a_conf(settings))
    return conf


def s3a_conf(settings: Settings) -> dict[str, str]:
    """S3A from the `[s3]` section: the endpoint, keys and region that boto3 and the stack use too.

    Checked against SeaweedFS 4.48 with hadoop-aws 3.5.0: its defaults for checksums
    (`fs.s3a.checksum.generation=false`, `fs.s3a.request.md5.header=true`), etag change detection
    and conditional create (`If-None-Match`) all work there, so none is overridden.
    """
    s3 = settings.s3
    return {
        f"{_S3A}impl": S3A_FILESYSTEM,
        f"{_S3A}endpoint": s3.endpoint,
        # Signing needs a region; third-party stores accept any name but `sdk`, `ec2`, `auto`.
        f"{_S3A}endpoint.region": s3.region,
        # The bucket never has to resolve as a host name (`minio:9000`, an IP, any local server).
        f"{_S3A}path.style.access": "true",
        f"{_S3A}connection.ssl.enabled": str(s3.endpoint.lower().startswith("https://")).lower(),
        # Only the keys given here: no environment, profile or instance-metadata lookup that may hang.
        f"{_S3A}aws.credentials.provider": S3A_CREDENTIALS,
        f"{_S3A}access.key": s3.access_key,
        f"{_S3A}secret.key": s3.secret_key.get_secret_value(),
        # hadoop-aws 3.5.0 reads through the S3 analytics accelerator by default, which keeps an entry per
        # object read until the filesystem closes (HADOOP-20058): a job reading new lake files for days
        # grows without bound, and its cleanup thread took 7 % of the job's CPU in benchmarks/stream.py.
        f"{_S3A}input.stream.type": "classic",
    }


def redacted(conf: dict[str, str]) -> dict[str, str]:
    """The properties with the S3 keys masked, for log lines and error messages."""
    return {key: (_MASK if key in _SECRET_KEYS else value) for key, value in conf.items()}


def _jvm_class_path() -> str | None:
    """The class path of the JVM pyspark already started in this process, or None when there is none."""
    from pyspark import SparkContext

    if SparkContext._jvm is None:
        return None
    return str(SparkContext._jvm.java.lang.System.getProperty("java.class.path"))


def _driver_class_path(conf: dict[str, str]) -> list[str]:
    """What the driver JVM's classes come from: pyspark's own jars, then the connectors'."""
    import pyspark

    identity = f"pyspark {pyspark.__version__} at {Path(pyspark.__file__).parent}"
    return [identity, *conf.get("spark.driver.extraClassPath", "").split(os.pathsep)]


def prepare_class_archive(settings: Settings) -> bool:
    """Write the driver's class archive (jvm/cds.py) now, in a JVM of its own; False when one exists.

    For a machine's first Spark JVMs to share it: otherwise the first to start writes it when it ends,
    which for a long-running job or a test session is only at the end. Runs Spark SQL and a streaming
    query on a built-in source, so their classes are in it too. Call it in a process without Spark.
    """
    conf = spark_conf(settings, resolved("spark", settings.stack.cache_dir))
    if cds.archive(settings.stack.cache_dir, _driver_class_path(conf)).is_file():
        return False
    from pyspark import SparkContext

    session = build_session(settings, "sensorpipe-class-archive")
    session.range(1000).selectExpr("id % 7 as k", "cast(id as double) as v").groupBy("k").avg("v").collect()
    rates = session.readStream.format("rate").option("rowsPerSecond", 10).load()
    query = rates.writeStream.format("memory").queryName("warm").trigger(availableNow=True).start()
    query.awaitTermination(60)
    session.stop()
    gateway = SparkContext._gateway
    process = getattr(gateway, "proc", None)
    if process is not None:  # the JVM writes the archive as it exits: let it, and wait
        process.stdin.close()
        process.wait(timeout=300)
    return True


def build_session(settings: Settings, app_name: str) -> SparkSession:
    """A SparkSession with the pinned jars and the settings' binding and S3A; JarsError when the jars do not fit."""
    problems = check_spark_jars(settings.stack.cache_dir)
    if problems:
        raise JarsError("the Spark jar set does not fit the installed pyspark:\n- " + "\n- ".join(problems))
    jars = resolved("spark", settings.stack.cache_dir)
    conf = spark_conf(settings, jars)
    class_path = _jvm_class_path()
    if class_path is not None and "spark.driver.extraClassPath" in conf:
        # pyspark keeps its JVM after `stop()`, and a class path only applies when the JVM starts.
        wanted = conf.pop("spark.driver.extraClassPath").split(os.pathsep)
        missing = sorted(set(wanted) - set(class_path.split(os.pathsep)))
        if missing:
            raise JarsError(
                f"Spark's JVM already runs in this process without {len(missing)} of the pinned jars"
                f" ({Path(missing[0]).name}, ...), so S3A and Kafka classes would be missing:"
                " let build_session start Spark first, in a fresh process"
            )
    if class_path is None and settings.spark.class_data_sharing:
        # This process starts the driver JVM: it maps the classes of earlier starts (jvm/cds.py).
        sharing = cds.driver_options(settings.stack.cache_dir, _driver_class_path(conf))
        if sharing:
            conf["spark.driver.extraJavaOptions"] = f"{conf['spark.driver.extraJavaOptions']} {sharing}"
    if on_loopback(settings.spark.master):
        # Read by the JVM when it starts: the UI and the block manager bind here.
        os.environ["SPARK_LOCAL_IP"] = settings.stack.bind_host
    # Python workers run the job's own functions, so they need this interpreter (the one with sensorpipe
    # installed), not whatever `python3` comes first on PATH; pyspark reads it from the environment.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

    from pyspark.sql import SparkSession

    if SparkSession.getActiveSession() is not None:
        logger.warning("a SparkSession already runs in this process: its jars, master and memory stay as they are")
    logger.debug("Spark properties: %s", redacted(conf))
    started = time.monotonic()
    builder = SparkSession.builder.appName(app_name)
    for key, value in conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel(SPARK_LOG_LEVEL)
    logger.info(
        "Spark %s session %r on %s in %.1f s (%d connector jars, S3A endpoint %s)",
        session.version,
        app_name,
        settings.spark.master,
        time.monotonic() - started,
        len(jars),
        settings.s3.endpoint,
    )
    return session
