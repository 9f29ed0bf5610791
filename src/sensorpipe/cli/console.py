"""All terminal output goes through here: one rich console for humans, plain JSON for scripts."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, NoReturn

from rich.console import Console

from sensorpipe.monitoring.provisioning import Written

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    """Machine-readable output on stdout, nothing else on that stream."""
    sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")


def print_markdown(text: str) -> None:
    """Markdown source, as is, for docs generated from code."""
    sys.stdout.write(text + "\n")


def ok(message: str) -> None:
    console.print(f"[green]✓[/] {message}")


def report_written(written: list[Written], json_: bool) -> None:
    """The files an export wrote: one ✓ line each, or a JSON list of {path, what}."""
    if json_:
        print_json([{"path": str(w.path), "what": w.what} for w in written])
        return
    for w in written:
        ok(f"{w.path}: {w.what}")


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one clear error (cause and fix, no stack trace) and exit."""
    err_console.print(f"[red]✗[/] {message}")
    raise SystemExit(code)


def log_events() -> None:
    """Long-running services (bridge, stream job) log one timestamped line per event on stderr."""
    package = logging.getLogger("sensorpipe")
    package.setLevel(min(logging.getLogger().getEffectiveLevel(), logging.INFO))
    for handler in logging.getLogger().handlers:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
