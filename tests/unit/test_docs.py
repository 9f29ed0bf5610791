"""The README's configuration reference is the output of `sensorpipe config reference`, never drifting."""

from __future__ import annotations

from pathlib import Path

from sensorpipe.cli.config_cmd import markdown_reference

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_configuration_reference_is_current() -> None:
    text = README.read_text()
    start = text.index("<!-- config-reference")
    start = text.index("\n", start) + 1
    end = text.index("<!-- /config-reference -->")
    assert text[start:end].strip() == markdown_reference(), (
        "run `sensorpipe config reference` and paste it into README.md"
    )
