"""`sensorpipe bench --plot FILE.png`: rate per stage and p99 latency over time, one column per mode.

A table gives the sustained figures; only a plot shows whether a rate was steady, saw-toothed with the
micro-batches, or sagging at the end, and whether latency crept up while the lag grew. The figure is drawn
with matplotlib's Agg canvas on a `Figure` object, not through `pyplot`: no GUI backend, no global state,
safe in a headless run and in tests.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from sensorpipe.bench.report import BenchReport

WIDTH_PER_MODE_IN = 6.4
HEIGHT_IN = 7.2
DPI = 100


def plot(report: BenchReport, path: Path, dpi: int = DPI) -> Path:
    """Write the PNG: top row readings/s per stage over time, bottom row p99 publish → queryable; returns `path`."""
    columns = max(1, len(report.modes))
    figure = Figure(figsize=(WIDTH_PER_MODE_IN * columns, HEIGHT_IN), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(2, columns, squeeze=False, sharex="col")
    figure.suptitle(f"sensorpipe bench, {report.date:%Y-%m-%d %H:%M} UTC, {report.machine.cores} cores")
    for column, mode in enumerate(report.modes):
        top, bottom = axes[0][column], axes[1][column]
        top.set_title(f"{mode.label}: offered {mode.offered_rate:,.0f} readings/s")
        for series in mode.rates:
            if series.points:
                top.plot([t for t, _ in series.points], [v for _, v in series.points], label=series.name)
        top.set_ylabel("readings/s")
        top.grid(alpha=0.3)
        if any(s.points for s in mode.rates):
            top.legend(loc="lower right", fontsize="small")
        if mode.latency_p99 is not None and mode.latency_p99.points:
            points = mode.latency_p99.points
            bottom.plot([t for t, _ in points], [v for _, v in points], color="tab:red", label="p99")
        bottom.set_ylabel("p99 publish → queryable (s)")
        bottom.set_xlabel("seconds since start")
        bottom.grid(alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=dpi)
    return path


__all__ = ["plot"]
