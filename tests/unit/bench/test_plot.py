"""`sensorpipe bench --plot`: a real PNG, drawn headless."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from sensorpipe.bench.plot import DPI, HEIGHT_IN, WIDTH_PER_MODE_IN, plot
from tests.unit.bench.test_report import mode, report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == PNG_SIGNATURE
    assert header[12:16] == b"IHDR"
    return int.from_bytes(header[16:20]), int.from_bytes(header[20:24])


def test_plot_writes_a_png_one_column_per_mode(tmp_path: Path) -> None:
    path = plot(report(), tmp_path / "out" / "bench.png")
    assert path.stat().st_size > 10_000
    assert png_size(path) == (round(2 * WIDTH_PER_MODE_IN * DPI), round(HEIGHT_IN * DPI))


def test_plot_without_time_series_still_draws(tmp_path: Path) -> None:
    bare = dataclasses.replace(mode(1), rates=(), latency_p99=None)
    path = plot(report(bare), tmp_path / "bare.png", dpi=50)
    assert png_size(path) == (round(WIDTH_PER_MODE_IN * 50), round(HEIGHT_IN * 50))
