"""Loading of settings: a TOML file, then environment overrides, then validation.

Environment variables override file values, for containers. A variable named
`<PREFIX><SECTION>__<KEY>` sets `[section] key`, e.g. `CITYMESH_HTTP__PORT=9000`
sets `[http] port`; `<PREFIX><KEY>` sets a top-level key. Values are parsed as
TOML scalars when they can be (`9000`, `true`, `1.5`) and kept as text otherwise.
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from citymesh.errors import ConfigError

logger = logging.getLogger(__name__)

S = TypeVar("S", bound=BaseModel)


def _parse_scalar(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _env_overrides(
    prefix: str, environ: Mapping[str, str], exclude: tuple[str, ...]
) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for name, text in environ.items():
        if not name.startswith(prefix) or name.startswith(exclude) or not text:
            continue
        path = name[len(prefix) :].lower().split("__")
        target = overrides
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = _parse_scalar(text)
    return overrides


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_toml(path: Path) -> dict[str, Any]:
    """Read a TOML file, turning every failure into a ConfigError naming the file."""
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} not found; check the --config path"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from None


def load_settings(
    model: type[S],
    path: Path | None,
    env_prefix: str,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    env_exclude: tuple[str, ...] = (),
) -> S:
    """Build settings from a TOML file, the environment and explicit overrides.

    Later sources win: file, then environment, then `overrides` (CLI options).
    Variables starting with one of `env_exclude` belong to another program
    sharing the prefix and are ignored.
    Every validation error is reported with its key, the bad value and what the
    key accepts.
    """
    data = read_toml(path) if path is not None else {}
    env = os.environ if environ is None else environ
    data = _merge(data, _env_overrides(env_prefix, env, env_exclude))
    if overrides:
        data = _merge(data, overrides)
    source = str(path) if path is not None else "defaults"
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_errors(exc, source, env_prefix)) from None


def format_errors(exc: ValidationError, source: str, env_prefix: str) -> str:
    """Render pydantic errors as one line per key: key, value, what is allowed."""
    lines = [f"invalid settings ({source}):"]
    for error in exc.errors():
        key = ".".join(str(p) for p in error["loc"])
        env_name = env_prefix + "__".join(str(p) for p in error["loc"]).upper()
        if error["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key; remove it or check its spelling")
            continue
        if error["type"] == "missing":
            lines.append(f"  {key}: missing; set it in the file or as {env_name}")
            continue
        value = error.get("input")
        lines.append(f"  {key} = {value!r}: {error['msg']} (env: {env_name})")
    return "\n".join(lines)
