"""`serve`'s settings from three more places than its flags: a YAML file and the environment.

Every serve flag is also a key of the `--config` file (``max-policy-age`` or
``max_policy_age``) and a ``CNM_POLICY_MAX_POLICY_AGE`` variable. Precedence: flags > env >
file > defaults. Flags are parsed with ``None`` defaults so "not given" is visible; the real
defaults are kept aside (`install`) and filled in last (`resolve`). Unknown keys are errors.
"""

from __future__ import annotations

import argparse
import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cnm_policy.distribution.fetch import redacted
from cnm_policy.errors import YamlError
from cnm_policy.policy._yaml import load_yaml

__all__ = ["ENV_PREFIX", "Layers", "install", "render", "resolve"]

ENV_PREFIX = "CNM_POLICY_"
_MAX_FILE_BYTES = 256 * 1024
_ONLY_FLAGS = {"config", "print_config", "func", "command"}  # never from a file or env
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Layers:
    """The serve parser's real defaults and actions, by destination (set by `install`)."""

    defaults: dict[str, Any] = field(default_factory=dict)
    actions: dict[str, argparse.Action] = field(default_factory=dict)


def install(parser: argparse.ArgumentParser) -> None:
    """Add --config/--print-config; make every other flag default to ``None`` (= not given)."""
    parser.add_argument(
        "--config",
        type=Path,
        metavar="YAML",
        help=f"read settings from this file (keys: the flags without dashes; env "
        f"{ENV_PREFIX}<FLAG> overrides the file, flags override both)",
    )
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="print the effective settings (secrets masked) as YAML and exit",
    )
    layers = Layers()
    for action in parser._actions:  # argparse offers no public list of an argument's actions
        if action.dest in _ONLY_FLAGS or not action.option_strings:
            continue
        if isinstance(action, argparse._HelpAction | argparse._VersionAction):
            continue
        layers.defaults[action.dest] = action.default
        layers.actions[action.dest] = action
        if action.help:  # --help still states the real default
            action.help = action.help.replace("%(default)s", str(action.default))
        action.default = None
    parser.set_defaults(_layers=layers)


def resolve(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, str]:
    """Fill every setting not given as a flag from env, then the file, then the default.

    Returns where each setting came from (``flag``, ``env``, ``file``, ``default``). Idempotent;
    a namespace from a parser without `install` is left alone. ValueError names the key.
    """
    layers: Layers | None = getattr(args, "_layers", None)
    if layers is None or getattr(args, "_resolved", None) is not None:
        return dict(getattr(args, "_resolved", None) or {})
    config_path = args.config
    if config_path is None and environ.get(f"{ENV_PREFIX}CONFIG"):
        config_path = Path(environ[f"{ENV_PREFIX}CONFIG"])
    from_file = _read_file(config_path, layers) if config_path is not None else {}
    from_env = _read_env(environ, layers)
    sources: dict[str, str] = {}
    for dest in layers.actions:
        if getattr(args, dest) is not None:
            sources[dest] = "flag"
        elif dest in from_env:
            setattr(args, dest, from_env[dest])
            sources[dest] = "env"
        elif dest in from_file:
            setattr(args, dest, from_file[dest])
            sources[dest] = "file"
        else:
            setattr(args, dest, _copy(layers.defaults[dest]))
            sources[dest] = "default"
    args._resolved = sources
    return sources


def _read_file(path: Path, layers: Layers) -> dict[str, Any]:
    where = f"--config `{path}`"
    try:
        size = path.stat().st_size
        if size > _MAX_FILE_BYTES:
            raise ValueError(f"{where}: larger than {_MAX_FILE_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{where}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ValueError(f"{where}: not UTF-8 text") from exc
    try:
        data, duplicates = load_yaml(text)
    except YamlError as exc:
        raise ValueError(f"{where}: {exc}") from exc
    if duplicates:
        key, line = duplicates[0]
        raise ValueError(f"{where}:{line}: key `{key}` is given twice")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{where}: must be a mapping of settings (flag names without dashes)")
    lines = getattr(data, "key_lines", {})
    values: dict[str, Any] = {}
    for key, value in data.items():
        at = f"{where}:{lines[key]}" if key in lines else where
        dest = str(key).replace("-", "_")
        action = layers.actions.get(dest)
        if action is None:
            raise ValueError(f"{at}: unknown key `{key}`{_suggest(dest, layers)}")
        if value is not None:  # `key: null` is the default, as --print-config shows it
            values[dest] = _typed(action, value, f"{at}: `{key}`")
    return values


def _read_env(environ: Mapping[str, str], layers: Layers) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, text in environ.items():
        if not name.startswith(ENV_PREFIX) or name == f"{ENV_PREFIX}CONFIG":
            continue
        dest = name.removeprefix(ENV_PREFIX).lower()
        action = layers.actions.get(dest)
        if action is None:
            raise ValueError(f"{name}: unknown setting `{dest}`{_suggest(dest, layers)}")
        values[dest] = _from_text(action, text, name)
    return values


def _from_text(action: argparse.Action, text: str, where: str) -> Any:
    """An environment string as the flag would have taken it."""
    if action.nargs == 0:  # store_true / store_false
        word = text.strip().lower()
        if word not in _TRUE | _FALSE:
            raise ValueError(f"{where}: `{text}` is not true or false")
        return (word in _TRUE) == (action.const is not False)
    if isinstance(action, argparse._AppendAction):
        return [_convert(action, item.strip(), where) for item in text.split(",") if item.strip()]
    return _convert(action, text, where)


def _typed(action: argparse.Action, value: Any, where: str) -> Any:
    """A YAML value checked against the flag it stands for."""
    if action.nargs == 0:
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be true or false")
        return value == (action.const is not False)
    if isinstance(action, argparse._AppendAction):
        items = value if isinstance(value, list) else [value]
        return [_convert(action, _scalar(item, where), where) for item in items]
    return _convert(action, _scalar(value, where), where)


def _scalar(value: Any, where: str) -> str:
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        raise ValueError(f"{where} must be a single value")
    return str(value)


def _convert(action: argparse.Action, text: str, where: str) -> Any:
    try:
        value = action.type(text) if callable(action.type) else text
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: `{text}` is not a valid value") from exc
    if action.choices is not None and value not in action.choices:
        allowed = ", ".join(f"`{choice}`" for choice in action.choices)
        raise ValueError(f"{where}: `{text}` is not one of {allowed}")
    return value


def _suggest(dest: str, layers: Layers) -> str:
    close = difflib.get_close_matches(dest, list(layers.actions), n=1)
    return f" (did you mean `{close[0].replace('_', '-')}`?)" if close else ""


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


_SECRET_NAME = re.compile(r"secret|password|passphrase|token|credential|private", re.IGNORECASE)
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def render(args: argparse.Namespace, sources: Mapping[str, str], *, mask: bool = True) -> str:
    """The effective settings as a `--config` file would hold them, secrets masked.

    Unmasked only for the `--processes` children's private file (mode 0600 in a 0700 folder).
    """
    layers: Layers = args._layers
    settings: dict[str, Any] = {}
    for dest in layers.actions:
        value = getattr(args, dest)
        settings[dest.replace("_", "-")] = _masked(dest, value) if mask else _plain(value)
    body = yaml.safe_dump(settings, sort_keys=False, default_flow_style=False)
    given = {dest: where for dest, where in sources.items() if where != "default"}
    header = "".join(f"# {dest.replace('_', '-')}: from {where}\n" for dest, where in given.items())
    return header + body


def _masked(dest: str, value: Any) -> Any:
    if isinstance(value, list):
        return [_masked(dest, item) for item in value]
    if isinstance(value, Path):
        value = str(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    text = str(value)
    if _SECRET_NAME.search(dest):
        return "***"
    return redacted(text, "***") if _URL.match(text) else text  # credentials, ?token=...


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return str(value) if isinstance(value, Path) else value
