"""The bench report: what one `sensorpipe bench` run measured, the targets it is held to, and its renderings.

One report holds both modes (one reading per message, and gateway batches of K), because the targets
compare them with each other's ceilings and a figure for one mode alone invites the wrong conclusion.
Figures that were not measured are None and their targets say "not measured", never "met". Every step's
verdict is reported beside the landing rate and end backlog it was judged on (`StepReport`), so a reader
can check the verdict against its own figures.

The report is plain frozen dataclasses so that `to_json`/`from_json` round-trip it exactly (pydantic
validates the JSON back into the same types) and the runner, the table, the plot and tests share it.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter
from rich.table import Table

from sensorpipe.bench.accounting import Accounting
from sensorpipe.bench.stats import Percentiles, Sample, fraction
from sensorpipe.bench.steps import END_BACKLOG_S, LANDING_SHARE

if TYPE_CHECKING:
    from rich.console import Console

GIB = 1024**3

# The targets (docs/bench.md "Targets", from issue 21).
MQTT_CEILING_SHARE = 0.60
MQTT_CEILING_GOAL = 0.80
"""Where batch 1 is headed; the target a run is judged on is MQTT_CEILING_SHARE."""
GATEWAY_READINGS_PER_S = 50_000.0
P99_LIMIT_S = 1.0
STACK_RSS_LIMIT_BYTES = 3 * GIB
COLD_START_LIMIT_S = 30.0
CPU_FIGURE_READINGS = 10_000
"""The stream job's CPU is stated per this many readings stored; "halved" is judged by a person across runs."""

LOAD_COMPONENT = "simulator (load)"
"""The load generator: its CPU is shown (it shares the machine) but it is not part of the stack's memory."""
SATURATED_SHARE = 0.95
"""A fixed-rate run whose sinks took less than this share of the offered rate found the pipeline's limit."""

MQTT_STAGE = "mqtt"
"""Stage name of the MQTT QoS 1 publish → subscribe ceiling; others: kafka_produce, kafka_consume, postgres_copy,
parquet_write (any name works, these are what the runner uses)."""


@dataclass(frozen=True)
class Machine:
    """Where the figures come from: they mean nothing without it."""

    cores: int
    memory_bytes: int
    os: str
    python: str

    @classmethod
    def current(cls) -> Machine:
        """This machine: logical cores, physical memory, kernel, Python version."""
        try:
            memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            memory = 0
        return cls(
            cores=os.cpu_count() or 1,
            memory_bytes=memory,
            os=f"{platform.system()} {platform.release()}",
            python=platform.python_version(),
        )


@dataclass(frozen=True)
class Component:
    """One component's resources: average CPU in cores over the measured window, peak resident memory (PSS)."""

    name: str
    cpu_cores: float
    rss_bytes: int


@dataclass(frozen=True)
class Series:
    """A quantity over time, for the plot: (seconds since the mode's start, value)."""

    name: str
    unit: str
    points: tuple[Sample, ...] = ()


@dataclass(frozen=True)
class Ceiling:
    """One stage alone, measured in the same run, in readings per second.

    `batch` is the readings per message it was measured with; None for stages where messages do not exist
    (PostgreSQL COPY, Parquet write): those apply to both modes.
    """

    stage: str
    readings_per_s: float
    batch: int | None = None

    def applies_to(self, batch: int) -> bool:
        return self.batch is None or self.batch == batch


@dataclass(frozen=True)
class LakeSize:
    """The lake's `raw` table at one moment: how much a mode's lake commits and queries had to work with."""

    rows: int | None
    """None when the log's add actions carry no row counts (files written without statistics)."""
    files: int
    bytes: int
    version: int | None
    """The table's Delta version (commits so far, less one); None when there was no table yet."""

    def describe(self) -> str:
        if self.version is None:
            return "no table yet"
        rows = "? rows" if self.rows is None else f"{self.rows:,} rows"
        return f"{rows} in {self.files:,} files ({self.bytes / 2**20:,.1f} MiB), version {self.version}"


@dataclass(frozen=True)
class StepReport:
    """One step as judged (`steps.judge`): the verdict beside the figures it rests on."""

    rate: float
    """Readings/s offered."""
    sustainable: bool
    landed: float
    """Readings/s the database took over the step's measured window."""
    end_backlog: float | None
    """Readings not yet stored at the step's end (the last quarter's lowest lag)."""
    reason: str
    load_s: float
    """How long the load ran, the simulator's start-up included."""
    batches: int | None = None
    """Micro-batches of the readings query in the measured window."""
    stream_cpu_per_10k: float | None = None
    """The stream job's CPU seconds per 10,000 readings stored, the step's drain and lake commit included."""
    kind: str = "search"
    """"search" (a step of `--max`'s search), "half" (half the highest sustainable rate: the latency step) or
    "fixed" (the one rate of a run without `--max`)."""

    @property
    def landed_share(self) -> float:
        return self.landed / self.rate if self.rate > 0 else 0.0

    @property
    def end_backlog_s(self) -> float | None:
        """The end backlog in seconds of readings at the offered rate."""
        return None if self.end_backlog is None or self.rate <= 0 else self.end_backlog / self.rate


@dataclass(frozen=True)
class ModeReport:
    """One mode (`batch` readings per message): load, throughput, losses, latency, resources, start-up."""

    batch: int
    offered_rate: float
    """Readings per second asked of the publisher."""
    sustained_db: float
    sustained_lake: float
    accounting: Accounting
    latency: Percentiles
    """Publish → queryable in the database, at the offered rate."""
    latency_half_rate: Percentiles | None = None
    """The same at half the highest sustainable rate: what the p99 target is about."""
    max_sustainable: float | None = None
    """From `--max` (steps.RateSearch); None when the run offered one rate."""
    steps: tuple[StepReport, ...] = ()
    """Every step, in order, with its verdict and the figures it rests on."""
    components: tuple[Component, ...] = ()
    cold_start_s: float | None = None
    """Cold start to the first row in the database."""
    rates: tuple[Series, ...] = ()
    """Readings/s per stage over time (mqtt, kafka, database, lake)."""
    latency_p99: Series | None = None
    """p99 publish → queryable over time."""
    window: tuple[float, float] | None = None
    """When the mode's readings were published (Unix seconds): the time range its accounting counted."""
    lake_at_start: LakeSize | None = None
    """The lake's `raw` when the mode started: batch K runs on the lake batch 1 filled."""
    step_length_s: float | None = None
    """How long each step's load was planned to run at least (`steps.step_length`); the runner extends a
    step whose micro-batches ran slower than the trigger."""
    stream_cpu_per_10k: float | None = None
    """The stream job's CPU seconds per 10,000 readings stored, at the headline step (the highest sustainable
    rate, or the fixed rate)."""

    @property
    def label(self) -> str:
        return "batch 1" if self.batch == 1 else f"batch {self.batch}"

    @property
    def end_to_end(self) -> float:
        """Readings/s that landed in both sinks: the slower of the two."""
        return min(self.sustained_db, self.sustained_lake)

    @property
    def throughput(self) -> float:
        """What the throughput targets compare: the highest sustainable rate when `--max` searched, else end to end."""
        return self.max_sustainable if self.max_sustainable is not None else self.end_to_end

    @property
    def limit_found(self) -> bool:
        """Whether `throughput` is the limit: searched with `--max`, or a fixed rate the pipeline did not keep up with.

        A fixed rate the pipeline kept up with says only that the limit is higher: a throughput target it
        falls short of is then not measured, not missed.
        """
        return self.max_sustainable is not None or self.end_to_end < SATURATED_SHARE * self.offered_rate

    @property
    def rss_bytes(self) -> int:
        """The whole stack's resident memory: the sum of each component's peak (an upper bound of the total).

        The load generator is not part of the stack.
        """
        return sum(c.rss_bytes for c in self.components if c.name != LOAD_COMPONENT)


@dataclass(frozen=True)
class BenchReport:
    """One bench run: both modes and the stage ceilings measured alongside them."""

    machine: Machine
    date: datetime
    command: str
    modes: tuple[ModeReport, ...]
    ceilings: tuple[Ceiling, ...] = ()

    def ceiling(self, stage: str, batch: int) -> Ceiling | None:
        return next((c for c in self.ceilings if c.stage == stage and c.applies_to(batch)), None)


@dataclass(frozen=True)
class TargetCheck:
    """One target against one figure: `met` is None when the figure was not measured, or when the target is
    judged by a person comparing runs (`by_hand`: the bench prints the figure)."""

    target: str
    mode: str
    figure: str
    met: bool | None
    by_hand: bool = False

    @property
    def status(self) -> str:
        if self.by_hand:
            return "compare runs"
        return {True: "met", False: "missed", None: "not measured"}[self.met]


def _check(target: str, mode: str, value: float | None, ok: bool | None, shown: str) -> TargetCheck:
    return TargetCheck(target, mode, "—" if value is None else shown, None if value is None else ok)


def _throughput_check(target: str, m: ModeReport, value: float | None, ok: bool, shown: str) -> TargetCheck:
    """A throughput target: short of it is "missed" only where the run found the limit (see `limit_found`)."""
    if value is not None and not ok and not m.limit_found:
        return TargetCheck(target, m.label, f"{shown}; kept up with the offered rate (--max finds the limit)", None)
    return _check(target, m.label, value, ok, shown)


def _throughput_figure(m: ModeReport) -> str:
    """The rate a throughput target judged, with the landing rate beside a sustainable one."""
    if m.max_sustainable is not None:
        return f"{m.max_sustainable:,.0f}/s sustainable, landed {m.sustained_db:,.0f}/s"
    return f"{m.end_to_end:,.0f}/s end to end"


def targets(report: BenchReport) -> list[TargetCheck]:
    """The targets (docs/bench.md) evaluated against the report, each with the figure it was judged on."""
    checks = []
    batches = {m.batch for m in report.modes}
    both = 1 in batches and any(b > 1 for b in batches)
    checks.append(
        TargetCheck(
            "both modes measured (batch 1 and batch K)", "all", ", ".join(m.label for m in report.modes) or "none", both
        )
    )
    for m in report.modes:
        if m.batch == 1:
            mqtt = report.ceiling(MQTT_STAGE, 1)
            share = fraction(m.throughput, mqtt.readings_per_s if mqtt else None)
            checks.append(
                _throughput_check(
                    f"highest sustainable ≥ {MQTT_CEILING_SHARE:.0%} of the MQTT QoS 1 ceiling"
                    f" (goal {MQTT_CEILING_GOAL:.0%})",
                    m,
                    share,
                    share is not None and share >= MQTT_CEILING_SHARE,
                    f"{share or 0:.0%} of {mqtt.readings_per_s if mqtt else 0:,.0f}/s: {_throughput_figure(m)}",
                )
            )
        else:
            checks.append(
                _throughput_check(
                    f"highest sustainable ≥ {GATEWAY_READINGS_PER_S:,.0f} readings/s with gateway batches",
                    m,
                    m.throughput,
                    m.throughput >= GATEWAY_READINGS_PER_S,
                    _throughput_figure(m),
                )
            )
        p99 = m.latency_half_rate.p99_s if m.latency_half_rate else None
        checks.append(
            _check(
                f"p99 publish → queryable ≤ {P99_LIMIT_S:g} s at half the sustainable rate",
                m.label,
                p99,
                p99 is not None and p99 <= P99_LIMIT_S,
                f"{p99 or 0:.3f} s",
            )
        )
        cpu = m.stream_cpu_per_10k
        checks.append(
            TargetCheck(
                f"stream job's CPU per {CPU_FIGURE_READINGS:,} readings stored: at least halved against today's code",
                m.label,
                "—" if cpu is None else f"{cpu:.2f} CPU s at {m.offered_rate:,.0f}/s",
                None,
                by_hand=cpu is not None,
            )
        )
        checks.append(
            _check(
                f"cold start → first row ≤ {COLD_START_LIMIT_S:g} s",
                m.label,
                m.cold_start_s,
                m.cold_start_s is not None and m.cold_start_s <= COLD_START_LIMIT_S,
                f"{m.cold_start_s or 0:.1f} s",
            )
        )
        rss = m.rss_bytes if m.components else None
        checks.append(
            _check(
                "whole stack ≤ 3 GiB resident (PSS)",
                m.label,
                rss,
                rss is not None and rss <= STACK_RSS_LIMIT_BYTES,
                f"{(rss or 0) / GIB:.2f} GiB",
            )
        )
        a = m.accounting
        checks.append(
            TargetCheck(
                "0 lost, 0 duplicated (database and lake)",
                m.label,
                f"lost {a.lost_db}/{a.lost_lake}, duplicated {a.duplicated_db}/{a.duplicated_lake}",
                a.ok,
            )
        )
    return checks


_ADAPTER: TypeAdapter[BenchReport] = TypeAdapter(BenchReport)


def to_json(report: BenchReport) -> str:
    """The report as JSON (figures in seconds, bytes and readings/s), with the target checks under "targets"."""
    data: dict[str, Any] = asdict(report)
    data["date"] = report.date.isoformat()
    data["targets"] = [{**asdict(t), "status": t.status} for t in targets(report)]
    return json.dumps(data, indent=2, ensure_ascii=False)


def from_json(text: str) -> BenchReport:
    """A report back from `to_json`'s output ("targets" are recomputed, not read)."""
    data = json.loads(text)
    data.pop("targets", None)
    return _ADAPTER.validate_python(data)


def _ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1000:,.0f} ms"


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}/s"


_KINDS = {"half": "½ max"}


def _verdict(step: StepReport) -> str:
    return "sustainable" if step.sustainable else f"not sustainable: {step.reason}"


def steps_table(report: BenchReport) -> Table:
    """Every step's verdict beside the landing rate and end backlog it was judged on."""
    table = Table(
        title=(
            f"Steps: sustainable = landed ≥ {LANDING_SHARE:.0%} of offered over the measured window"
            f" and backlog at the end < {END_BACKLOG_S:g} s of readings"
        )
    )
    for column in ("mode", "step", "offered", "load", "micro-batches", "stream CPU", "landed", "backlog at end"):
        table.add_column(column, justify="left" if column in ("mode", "step") else "right")
    table.add_column("verdict")
    for mode in report.modes:
        for step in mode.steps:
            backlog = step.end_backlog_s
            table.add_row(
                mode.label,
                _KINDS.get(step.kind, step.kind),
                _rate(step.rate),
                f"{step.load_s:.0f} s",
                "—" if step.batches is None else f"{step.batches}",
                "—" if step.stream_cpu_per_10k is None else f"{step.stream_cpu_per_10k:.2f} s/10k",
                f"{step.landed:,.0f}/s ({step.landed_share * 100:.0f} %)",
                "—" if backlog is None else f"{step.end_backlog or 0:,.0f} = {backlog:.1f} s",
                _verdict(step),
            )
    return table


def conditions_table(report: BenchReport) -> Table:
    """What each mode ran on: how long its steps were, the lake it started with, the stream job's CPU per reading."""
    table = Table(title="Each mode's conditions")
    table.add_column("mode")
    table.add_column("steps lasted", justify="right")
    table.add_column("lake raw at the start")
    table.add_column(f"stream CPU per {CPU_FIGURE_READINGS:,} stored", justify="right")
    for mode in report.modes:
        lengths = [s.load_s for s in mode.steps]
        lasted = "—" if mode.step_length_s is None else f"≥ {mode.step_length_s:.0f} s"
        if lengths:
            lasted += f" ({min(lengths):.0f} to {max(lengths):.0f} s)"
        cpu = mode.stream_cpu_per_10k
        table.add_row(
            mode.label,
            lasted,
            "—" if mode.lake_at_start is None else mode.lake_at_start.describe(),
            "—" if cpu is None else f"{cpu:.2f} s at {mode.offered_rate:,.0f}/s",
        )
    return table


def tables(report: BenchReport) -> list[Table]:
    """The report as rich tables: modes, steps, conditions, resources per component, stage ceilings, targets."""
    m = report.machine
    modes = Table(
        title=(
            f"sensorpipe bench — {report.date:%Y-%m-%d %H:%M} UTC — {m.cores} cores, {m.memory_bytes / GIB:.0f} GiB, "
            f"{m.os}, Python {m.python}"
        )
    )
    for column in (
        "mode",
        "offered",
        "database",
        "lake",
        "max sustainable",
        "acknowledged",
        "lost db/lake",
        "dup db/lake",
        "unexpected",
        "p50",
        "p95",
        "p99",
        "p99 at ½ max",
        "cold start",
    ):
        modes.add_column(column, justify="left" if column == "mode" else "right")
    for mode in report.modes:
        a, lat = mode.accounting, mode.latency
        half = mode.latency_half_rate.p99_s if mode.latency_half_rate else None
        modes.add_row(
            mode.label,
            _rate(mode.offered_rate),
            _rate(mode.sustained_db),
            _rate(mode.sustained_lake),
            _rate(mode.max_sustainable),
            f"{a.acknowledged:,}",
            f"{a.lost_db}/{a.lost_lake}",
            f"{a.duplicated_db}/{a.duplicated_lake}",
            f"{a.unexpected}",
            _ms(lat.p50_s),
            _ms(lat.p95_s),
            _ms(lat.p99_s),
            _ms(half),
            "—" if mode.cold_start_s is None else f"{mode.cold_start_s:.1f} s",
        )
    resources = Table(title="CPU (cores) and peak resident memory (PSS) per component")
    resources.add_column("mode")
    resources.add_column("component")
    resources.add_column("CPU", justify="right")
    resources.add_column("memory", justify="right")
    for mode in report.modes:
        for part in mode.components:
            resources.add_row(mode.label, part.name, f"{part.cpu_cores:.2f}", f"{part.rss_bytes / 2**20:,.0f} MiB")
        if mode.components:
            total = sum(part.cpu_cores for part in mode.components if part.name != LOAD_COMPONENT)
            resources.add_row(mode.label, "[b]whole stack[/]", f"{total:.2f}", f"{mode.rss_bytes / 2**20:,.0f} MiB")
    ceilings = Table(title="Stage ceilings (each stage alone) and end to end as a fraction of them")
    ceilings.add_column("stage")
    ceilings.add_column("batch", justify="right")
    ceilings.add_column("ceiling", justify="right")
    for mode in report.modes:
        ceilings.add_column(f"{mode.label} end to end", justify="right")
    for c in report.ceilings:
        shares = []
        for mode in report.modes:
            share = fraction(mode.throughput, c.readings_per_s) if c.applies_to(mode.batch) else None
            shares.append("" if share is None else f"{share:.0%}")
        ceilings.add_row(c.stage, "any" if c.batch is None else str(c.batch), _rate(c.readings_per_s), *shares)
    checks = Table(title="Targets (docs/bench.md)")
    for column in ("target", "mode", "figure", "status"):
        checks.add_column(column)
    colour = {True: "green", False: "red", None: "yellow"}
    for t in targets(report):
        checks.add_row(t.target, t.mode, t.figure, f"[{'cyan' if t.by_hand else colour[t.met]}]{t.status}[/]")
    return [modes, steps_table(report), conditions_table(report), resources, ceilings, checks]


def print_report(report: BenchReport, console: Console) -> None:
    """Print the tables on `console` (the command line passes its own)."""
    for table in tables(report):
        console.print(table)


def now() -> datetime:
    """The report's date: UTC, to the second."""
    return datetime.now(UTC).replace(microsecond=0)


def command_line() -> str:
    """The command as it was run, for the report's header."""
    return " ".join(["sensorpipe", *sys.argv[1:]]) if sys.argv else "sensorpipe bench"


__all__ = [
    "COLD_START_LIMIT_S",
    "CPU_FIGURE_READINGS",
    "GATEWAY_READINGS_PER_S",
    "LOAD_COMPONENT",
    "MQTT_CEILING_GOAL",
    "MQTT_CEILING_SHARE",
    "MQTT_STAGE",
    "P99_LIMIT_S",
    "STACK_RSS_LIMIT_BYTES",
    "BenchReport",
    "Ceiling",
    "Component",
    "LakeSize",
    "Machine",
    "ModeReport",
    "Series",
    "StepReport",
    "TargetCheck",
    "command_line",
    "conditions_table",
    "from_json",
    "now",
    "print_report",
    "steps_table",
    "tables",
    "targets",
    "to_json",
]
