"""docs/configuration.md, generated from the settings themselves, so the page never drifts from the code.

Every setting with its default, the environment variables that set it and its description, one table
per section; `sensorpipe config reference` prints it, and a unit test compares it with the committed file.
"""

from __future__ import annotations

from itertools import groupby

from sensorpipe.config.env import CONFIG_FILE_ENV, DEFAULT_CONFIG_FILE
from sensorpipe.config.settings import Settings, describe_fields

PAGE = "docs/configuration.md"
REGENERATE = f"sensorpipe config reference > {PAGE}"
"""The command that writes the page again after a setting changed."""

_INTRO = f"""\
# Configuration

<!-- Generated from src/sensorpipe/config/settings.py by `{REGENERATE}`.
     Do not edit: change the settings, then run that command (tests/unit/test_docs.py checks it). -->

sensorpipe builds one settings object from four layers, highest first:

1. **Flags**: a command's own options (`sensorpipe bridge --client-id b1`; each option's `--help`
   names the variables below that set the same thing), and `--set section.field=value` before the
   command, for any setting (`sensorpipe --set mqtt.port=1884 run`; repeatable).
2. **Environment variables**: `SENSORPIPE_<SECTION>_<FIELD>` for every setting, and the original
   hand-built stack's names (`MQTT_BROKER`, `KAFKA_BOOTSTRAP_SERVERS`, `POSTGRES_*`, `MINIO_*` …)
   where the tables list them; when both are set the `SENSORPIPE_` name wins. An empty value counts
   as unset.
3. **A TOML file**: `--config FILE`, else `${CONFIG_FILE_ENV}`, else `./{DEFAULT_CONFIG_FILE}` when it exists;
   one table per section. A key that is not a setting is refused, naming it.
4. **Defaults**, which point at the local stack that `sensorpipe stack up` runs on 127.0.0.1.

A secure stack home (`sensorpipe stack up --secure`) adds its own logins (`mqtt.username`,
`kafka.sasl_*` …) where none of the layers gave one: see [the secure stack](stack.md#security-logins-and-acls).

```toml
# {DEFAULT_CONFIG_FILE}
[mqtt]
port = 1884

[postgres]
host = "db.internal"
```

`sensorpipe config show` prints the effective values with secrets masked (`--json` for scripts).
Secrets (passwords, keys) never appear in output, logs or metrics.
"""


def _cell(text: str) -> str:
    """Table-safe: a `|` would end the cell, and `<id>` would be taken for an HTML tag and vanish."""
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def configuration_page() -> str:
    """The whole Markdown page (without its final newline): the layers, then one table per settings section."""
    parts = [_INTRO]
    rows = describe_fields()
    for section, fields in groupby(rows, key=lambda row: row[0].split(".", 1)[0]):
        model = Settings.model_fields[section].annotation
        parts.append(f"## `[{section}]`\n")
        if model is not None and model.__doc__:
            parts.append(f"{model.__doc__.strip()}\n")
        lines = ["| setting | default | environment variables | meaning |", "|---|---|---|---|"]
        for key, default, env, description in fields:
            names = ", ".join(f"`{name}`" for name in env.split(", "))
            code = default.replace("|", "\\|")
            shown = f"`{code}`" if default else ""
            lines.append(f"| `{key}` | {shown} | {names} | {_cell(description)} |")
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts).rstrip("\n")


__all__ = ["PAGE", "REGENERATE", "configuration_page"]
