"""Help texts of options that a setting or an environment variable can also give.

An option that sets `section.field` says so by the variables that set it too, generated from the
settings' own names (`sensorpipe.config.env`), so help and configuration cannot drift apart. Kept
free of heavy imports: every command's module imports it, and `sensorpipe --help` must stay fast.
"""

from __future__ import annotations

from sensorpipe.config.env import env_names

ENV_TAG = "[env: {names}]"
"""How a help text ends when an environment variable gives the same value (the flag wins over it)."""


def env_help(text: str, *names: str) -> str:
    """`text`, then the environment variables that give the same value, highest precedence first."""
    return f"{text} {ENV_TAG.format(names=', '.join(names))}"


def setting_help(section: str, field: str, text: str) -> str:
    """Help of an option that sets the setting `section.field`: `text` and the variables that set it."""
    return env_help(text, *env_names(section, field))


__all__ = ["ENV_TAG", "env_help", "setting_help"]
