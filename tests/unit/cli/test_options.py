"""Every option that sets a setting names, in its help, the environment variables that set it too.

Which options set a setting is found by running each command with each option (the settings are
captured where they would be loaded, before anything runs), not from a list: an option added
tomorrow is checked as well.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
from typer._click import Command
from typer.core import TyperGroup, TyperOption
from typer.core import _TyperParameter as TyperParameter

import sensorpipe.cli.context
from sensorpipe.cli import COMMANDS, build_app
from sensorpipe.cli.options import ENV_TAG
from sensorpipe.config import load_settings
from sensorpipe.config.env import CONFIG_FILE_ENV, env_names

NOT_A_SETTING = {"--set"}
"""Options whose value names the setting it sets (`--set mqtt.port=1884`): no one variable to name."""
HARMLESS_COMMAND = ["config", "show"]
"""What the root options are tried with: a command that reads the settings first and does nothing else."""


class _SettingsLoaded(Exception):
    """Raised where a command loads its settings, so nothing after it runs."""

    def __init__(self, overrides: dict[str, dict[str, Any]]) -> None:
        super().__init__("settings loaded")
        self.overrides = overrides


@dataclass(frozen=True)
class Tried:
    """One option of one command, and the settings it set when given."""

    command: tuple[str, ...]
    option: TyperOption
    settings: dict[tuple[str, str], Any]

    @property
    def name(self) -> str:
        return f"sensorpipe {' '.join(self.command)} {self.option.opts[0]}".replace("  ", " ")


def _leaves(group: TyperGroup, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Command]]:
    for name, command in group.commands.items():
        if isinstance(command, TyperGroup):
            yield from _leaves(command, (*path, name))
        else:
            yield (*path, name), command


def _reads_settings(command: Command) -> bool:
    """Only a command that takes the Typer context can reach the settings of the root options and flags."""
    assert command.callback is not None
    return typer.Context in typing.get_type_hints(command.callback).values()


def _sample(param: TyperParameter, tmp_path: Path) -> list[str]:
    """A value the parameter accepts: one of its choices, a path for a path, a number within its range."""
    if isinstance(param, TyperOption) and param.is_flag:
        return []
    kind = param.type_descriptor
    if kind.choices:
        return [str(kind.choices[-1])]
    if kind.is_path:
        return [str(tmp_path / "sample")]
    if kind.annotation in (int, float):
        low = kind.parameter_info.min
        return [str(2 if low is None else max(2, low))]
    return ["sample"]


def _required(command: Command, tmp_path: Path) -> list[str]:
    args: list[str] = []
    for param in command.params:
        if param.required and isinstance(param, TyperParameter):
            args += [*(param.opts[:1] if isinstance(param, TyperOption) else []), *_sample(param, tmp_path)]
    return args


def _options(command: Command) -> list[TyperOption]:
    """Options a user gives: not --version (eager: it exits first) nor the shell-completion options."""
    return [p for p in command.params if isinstance(p, TyperOption) and p.expose_value and not p.is_eager]


def _loaded(root: Command, args: list[str]) -> dict[tuple[str, str], Any]:
    try:
        root.main(args, prog_name="sensorpipe", standalone_mode=False)
    except _SettingsLoaded as e:
        return {(s, f): v for s, fields in e.overrides.items() for f, v in fields.items()}
    raise AssertionError(f"`sensorpipe {' '.join(args)}` did not reach its settings")


def _try(root: Command, command: tuple[str, ...], leaf: Command, tmp_path: Path) -> Iterator[Tried]:
    """Give each option of `leaf` (or, with no `command`, of the root) alone; see which settings change."""
    before, after = ([], [*HARMLESS_COMMAND]) if not command else ([*command], _required(leaf, tmp_path))
    baseline = _loaded(root, [*before, *after])
    for option in _options(leaf):
        if option.opts[0] in NOT_A_SETTING:
            continue
        given = [option.opts[0], *_sample(option, tmp_path)]
        args = [*given, *before, *after] if not command else [*before, *after, *given]
        loaded = _loaded(root, args)
        yield Tried(command, option, {k: v for k, v in loaded.items() if baseline.get(k) != v})


@pytest.fixture(scope="module")
def tried(tmp_path_factory: pytest.TempPathFactory) -> list[Tried]:
    """Every option of every command, each given alone, with the settings it set."""
    tmp_path = tmp_path_factory.mktemp("options")
    root = typer.main.get_command(build_app())
    assert isinstance(root, TyperGroup)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)

        def capture(overrides: dict[str, dict[str, Any]] | None = None, config_file: Path | None = None) -> None:
            raise _SettingsLoaded(overrides or {})

        patch.setattr(sensorpipe.cli.context, "load_settings", capture)
        found = list(_try(root, (), root, tmp_path))
        for command, leaf in _leaves(root):
            if _reads_settings(leaf):
                found += _try(root, command, leaf, tmp_path)
            else:
                found += [Tried(command, option, {}) for option in _options(leaf)]
    return found


def _env_names_in(help_text: str) -> list[str]:
    prefix = ENV_TAG.split("{", 1)[0]
    if prefix not in help_text:
        return []
    return help_text.rsplit(prefix, 1)[1].rstrip("]").split(", ")


def test_every_command_was_walked_and_the_known_setting_options_were_found(tried: list[Tried]) -> None:
    assert {t.command[0] for t in tried if t.command} == set(COMMANDS)
    by_name = {t.name: t.settings for t in tried}
    assert set(by_name["sensorpipe bridge --client-id"]) == {("bridge", "client_id")}
    assert set(by_name["sensorpipe stack up --lake"]) == {("lake", "backend")}
    assert set(by_name["sensorpipe --home"]) == {("stack", "home")}
    assert by_name["sensorpipe bridge --json"] == {}


def test_each_option_that_sets_a_setting_names_its_variables_and_no_other_option_names_any(
    tried: list[Tried],
) -> None:
    wrong = []
    for t in tried:
        named = _env_names_in(t.option.help or "")
        if t.option.opts[0] == "--config" and not t.command:
            expected = [CONFIG_FILE_ENV]
        elif len(t.settings) == 1:
            ((section, field),) = t.settings
            expected = list(env_names(section, field))
        else:
            assert not t.settings, f"{t.name} sets more than one setting: {t.settings}"
            expected = []
        if named != expected:
            wrong.append(f"{t.name}: help names {named or 'no variable'}, expected {expected or 'none'}")
    assert not wrong, "\n".join(wrong)


def test_each_variable_of_an_option_sets_the_same_setting_as_the_option(
    tried: list[Tried], clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.chdir(tmp_path)
    checked = 0
    for t in tried:
        for (section, field), value in t.settings.items():
            from_flag = getattr(getattr(load_settings({section: {field: value}}), section), field)
            default = getattr(getattr(load_settings(), section), field)
            assert from_flag != default, f"{t.name}: try a value other than the default {default!r}"
            for name in env_names(section, field):
                with clean_env.context() as env:
                    env.setenv(name, str(value))
                    from_env = getattr(getattr(load_settings(), section), field)
                assert from_env == from_flag, f"{name}={value} gave {section}.{field} = {from_env!r}"
                checked += 1
    assert checked, "no option sets a setting: the walk found none"
