"""Agent profiles: the agent types a host can run, loaded from YAML.

    from maos.profiles import load_profiles
    profiles = load_profiles(Path("deploy/agents.yaml"))  # built-ins + the user's file

Used by agent hosts (what to run) and the control plane (what exists).
"""

from ._loader import BUILTIN_FILE as BUILTIN_FILE
from ._loader import load_profiles as load_profiles
from ._loader import load_profiles_file as load_profiles_file
from ._loader import parse_duration as parse_duration
from ._loader import parse_profile as parse_profile
from ._loader import parse_profiles as parse_profiles
from ._loader import parse_size as parse_size
from ._model import AgentProfile as AgentProfile
from ._model import CommandRunner as CommandRunner
from ._model import PythonRunner as PythonRunner
from ._model import Runner as Runner
from ._model import RunnerKind as RunnerKind

__all__ = [
    "BUILTIN_FILE",
    "AgentProfile",
    "CommandRunner",
    "PythonRunner",
    "Runner",
    "RunnerKind",
    "load_profiles",
    "load_profiles_file",
    "parse_duration",
    "parse_profile",
    "parse_profiles",
    "parse_size",
]
