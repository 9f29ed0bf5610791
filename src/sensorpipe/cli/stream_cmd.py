"""`sensorpipe stream`: the Spark job from Kafka into the lake and the database, exactly once."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Annotated

import typer

from sensorpipe.cli.console import console, fail, log_events, ok, print_json
from sensorpipe.cli.context import app_context
from sensorpipe.cli.options import setting_help
from sensorpipe.config import Settings
from sensorpipe.stream.checkpoints import CheckpointError, checkpoints, reset_checkpoints
from sensorpipe.stream.runner import JobHandle, job_totals, run_job
from sensorpipe.stream.session import build_session


def stream(
    ctx: typer.Context,
    master: Annotated[
        str | None,
        typer.Option(
            help=setting_help("spark", "master", "Spark master: local[*] (default), spark://host:7077, k8s://…")
        ),
    ] = None,
    trigger: Annotated[
        str | None,
        typer.Option(help=setting_help("stream", "trigger", "Micro-batch interval, e.g. '1 second', '10 seconds'.")),
    ] = None,
    reset: Annotated[
        bool, typer.Option("--reset", help="Delete the job's checkpoints first (asks; --yes to skip asking).")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask before --reset.")] = False,
    available_now: Annotated[
        bool, typer.Option("--available-now", help="Process what Kafka holds now, then stop (catch-up, tests).")
    ] = False,
    json_: Annotated[
        bool, typer.Option("--json", help="Print the job's totals as JSON on stdout when it ends.")
    ] = False,
) -> None:
    """Run the stream job: decode, validate and store every reading of `kafka.topic`, exactly once.

    Valid readings go to `sensor_data` and, every `lake.commit_interval_s`, to the lake's Delta table
    `raw`; one-minute aggregates to `sensor_data_1m` and the lake's `agg_1m`; invalid records to
    `sensor_rejects` and `kafka.dlq_topic` with their reason. Checkpoints live under
    `stream.checkpoint_base` (default: `<home>/checkpoints/` with a local master, else the lake's
    `_checkpoints/`): a restart resumes exactly where the job stopped. The lake's tables are kept up
    every `lake.maintenance_interval_s` (`sensorpipe lake maintain`).

    `--reset` deletes the checkpoints, so the job reads again everything Kafka still retains (the sinks
    are idempotent: nothing is stored twice), and empties `agg_1m`, which the aggregates compute again
    from `raw`. Metrics: `curl 127.0.0.1:9311/metrics`.
    """
    settings = app_context(ctx).settings(spark={"master": master}, stream={"trigger": trigger})
    log_events()
    if reset:
        _reset(settings, yes=yes)
    handle = JobHandle(threading.Event())

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        handle.stop_requested.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    spark = build_session(settings, "sensorpipe-stream")
    try:
        metrics = run_job(settings, spark, available_now=available_now, handle=handle)
    finally:
        spark.stop()
    totals = job_totals(metrics)
    if json_:
        print_json(totals)
        return
    stored = totals["sink_rows"].get("database", 0)
    rejected = sum(totals["rejects"].values())
    reasons = ", ".join(f"{reason} {n:,}" for reason, n in sorted(totals["rejects"].items()))
    ok(f"stream job stopped: {stored:,} readings stored, {rejected:,} rejected{f' ({reasons})' if reasons else ''}")


def _reset(settings: Settings, *, yes: bool) -> None:
    """Delete the checkpoints after the user said yes (or passed --yes); the deletions are logged."""
    try:
        existing = [c for c in checkpoints(settings) if c.exists]
    except CheckpointError as e:
        fail(str(e))
    if not existing:
        console.print("no checkpoint to reset")
        return
    listing = ", ".join(c.uri for c in existing)
    if not yes and not typer.confirm(
        f"delete {len(existing)} checkpoint(s) ({listing}) and empty the lake's agg_1m? The job then reads"
        " again everything Kafka retains, and computes agg_1m again from raw"
    ):
        fail("nothing deleted", code=1)
    reset = reset_checkpoints(settings)
    for uri in reset.deleted:
        ok(f"deleted {uri}")
    for uri in reset.emptied:
        ok(f"emptied {uri}")
