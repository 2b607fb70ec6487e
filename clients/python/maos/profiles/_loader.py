"""Load and validate agent profiles from YAML (the built-in file plus a user file)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from maos.errors import InvalidArgument

from ._model import AgentProfile, CommandRunner, PythonRunner, Runner

BUILTIN_FILE = "builtin_agents.yaml"
DEFAULT_TIMEOUT_SECONDS = 600.0
MAX_BATCH_SIZE = 1024

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_TARGET_RE = re.compile(
    r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
)
# Binary multiples, as docker and most developer tools read "2GB".
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:([KMGT])(?:iB|B|i)?|B)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_DURATION_UNITS = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_KNOWN_FIELDS = ("description", "capabilities", "runner", "timeout", "resources", "batch_size")
_RUNNER_HELP = "runner must be {python: 'module:function'} or {command: [argv...]}"


def parse_size(value: object) -> int:
    """Bytes from 1048576, "512MB", "2GB", "1.5GiB", "64k" (binary multiples); raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size like 512MB or 2GB, got {value!r}")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError(f"size must be positive, got {value}")
        return value
    if isinstance(value, str):
        m = _SIZE_RE.match(value)
        if m:
            size = int(float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "").upper()])
            if size > 0:
                return size
    raise ValueError(f"expected a size like 512MB, 2GB or a number of bytes, got {value!r}")


def parse_duration(value: object) -> float:
    """Seconds from 30, 2.5, "90s", "15m", "2h", "500ms"; raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"expected seconds, got {value!r}")
    seconds: float | None = None
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        m = _DURATION_RE.match(value)
        if m:
            seconds = float(m.group(1)) * _DURATION_UNITS[m.group(2)]
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"expected a positive number of seconds (or '90s', '15m', '2h'), got {value!r}")
    return seconds


def load_profiles(path: Path | str | None = None) -> dict[str, AgentProfile]:
    """The built-in profiles, merged with the user's file when given (the user's win on a name clash).

    Raises maos.errors.InvalidArgument naming the file, the agent type and the
    field when the file is unreadable or invalid.
    """
    builtin_text = resources.files(__package__).joinpath(BUILTIN_FILE).read_text(encoding="utf-8")
    profiles = parse_profiles(builtin_text, source=BUILTIN_FILE)
    if path is not None:
        profiles.update(load_profiles_file(Path(path)))
    return profiles


def load_profiles_file(path: Path) -> dict[str, AgentProfile]:
    """Only the profiles defined in one YAML file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidArgument(f"{path}: cannot read agent profiles: {exc.strerror or exc}") from exc
    return parse_profiles(text, source=str(path))


def parse_profiles(text: str, *, source: str = "<string>") -> dict[str, AgentProfile]:
    """Profiles from YAML text; `source` names the file in error messages."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidArgument(f"{source}: not valid YAML: {exc}") from exc
    if doc is None:
        return {}
    if not isinstance(doc, Mapping):
        raise InvalidArgument(f"{source}: the top level must be a mapping with an 'agent_types' key")
    unknown = [str(k) for k in doc if k != "agent_types"]
    if unknown:
        raise InvalidArgument(f"{source}: unknown top-level key {unknown[0]!r}; expected 'agent_types'")
    types = doc.get("agent_types")
    if types is None:
        return {}
    if not isinstance(types, Mapping):
        raise InvalidArgument(f"{source}: 'agent_types' must be a mapping of name -> profile")
    profiles: dict[str, AgentProfile] = {}
    for name, spec in types.items():
        profile = parse_profile(name, spec, source=source)
        profiles[profile.name] = profile
    return profiles


def parse_profile(name: object, spec: object, *, source: str = "<string>") -> AgentProfile:
    """Validate one agent type's mapping; errors name the source, the type and the field."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise InvalidArgument(
            f"{source}: agent type name {name!r} must be 1-63 characters of letters, digits, '_', '.', '-'"
        )

    def fail(message: str) -> InvalidArgument:
        """An error naming the source, the agent type and (in `message`) the field."""
        return InvalidArgument(f"{source}: agent type {name!r}: {message}")

    if not isinstance(spec, Mapping):
        raise fail("must be a mapping with at least a 'runner'")
    for key in spec:
        if key not in _KNOWN_FIELDS:
            raise fail(f"unknown field {key!r}; known fields: {', '.join(_KNOWN_FIELDS)}")

    description = spec.get("description", "")
    if not isinstance(description, str):
        raise fail("description must be a string")

    capabilities = spec.get("capabilities", [])
    if not isinstance(capabilities, list) or not all(isinstance(c, str) and c for c in capabilities):
        raise fail("capabilities must be a list of non-empty strings")

    runner = _parse_runner(spec.get("runner"), fail)

    try:
        timeout = parse_duration(spec.get("timeout", DEFAULT_TIMEOUT_SECONDS))
    except ValueError as exc:
        raise fail(f"timeout: {exc}") from None

    memory: int | None = None
    cpu: float | None = None
    res = spec.get("resources")
    if res is not None:
        if not isinstance(res, Mapping):
            raise fail("resources must be a mapping like {memory: 2GB, cpu: 1.0}")
        for key in res:
            if key not in ("memory", "cpu"):
                raise fail(f"resources: unknown field {key!r}; known fields: memory, cpu")
        if res.get("memory") is not None:
            try:
                memory = parse_size(res["memory"])
            except ValueError as exc:
                raise fail(f"resources.memory: {exc}") from None
        if res.get("cpu") is not None:
            raw_cpu = res["cpu"]
            if isinstance(raw_cpu, bool) or not isinstance(raw_cpu, int | float) or not raw_cpu > 0:
                raise fail(f"resources.cpu must be a positive number of cores, got {raw_cpu!r}")
            cpu = float(raw_cpu)

    batch_size = spec.get("batch_size", 1)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise fail(f"batch_size must be an integer from 1 to {MAX_BATCH_SIZE}, got {batch_size!r}")

    return AgentProfile(
        name=name,
        capabilities=tuple(capabilities),
        runner=runner,
        timeout_seconds=timeout,
        memory_limit_bytes=memory,
        cpu_cores=cpu,
        batch_size=batch_size,
        description=description,
    )


def _parse_runner(raw: Any, fail: Callable[[str], InvalidArgument]) -> Runner:
    if not isinstance(raw, Mapping) or len(raw) != 1:
        raise fail(_RUNNER_HELP)
    ((kind, value),) = raw.items()
    if kind == "python":
        if not isinstance(value, str) or not _TARGET_RE.match(value):
            raise fail(f"runner.python must look like 'package.module:function', got {value!r}")
        return PythonRunner(target=value)
    if kind == "command":
        if not isinstance(value, list) or not value:
            raise fail("runner.command must be a non-empty list of arguments, e.g. [claude, -p, '{description}']")
        if not all(isinstance(a, str) for a in value):
            bad = next(a for a in value if not isinstance(a, str))
            raise fail(f"runner.command arguments must be strings (quote numbers), got {bad!r}")
        if not value[0]:
            raise fail("runner.command: the program (first argument) must not be empty")
        return CommandRunner(argv=tuple(value))
    raise fail(_RUNNER_HELP)
