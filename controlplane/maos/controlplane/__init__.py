"""The MAOS control plane: accepts tasks, schedules them onto agent hosts, records results."""

from ._config import ControlPlaneConfig as ControlPlaneConfig
from ._runtime import RuntimeSettings as RuntimeSettings
from ._server import ControlPlane as ControlPlane

__all__ = ["ControlPlane", "ControlPlaneConfig", "RuntimeSettings"]
