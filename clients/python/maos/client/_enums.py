"""User-facing names for the protobuf enums: "high" <-> PRIORITY_HIGH and so on.

Names are the enum value names without their prefix, lower case ("timed_out").
Parsing is case-insensitive, accepts "-" for "_" and also the full protobuf
name; an unknown name raises InvalidArgument listing the allowed ones.
"""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

from maos.errors import InvalidArgument
from maos.v1 import common_pb2, hosts_pb2, templates_pb2

_V = TypeVar("_V", bound=int)


class _EnumWrapper(Protocol[_V]):
    def items(self) -> list[tuple[str, _V]]: ...


class EnumNames(Generic[_V]):
    """Two-way mapping between one protobuf enum and its user-facing names."""

    def __init__(self, what: str, enum: _EnumWrapper[_V], prefix: str, unspecified: str = "unspecified") -> None:
        self.what = what
        self._unspecified = unspecified
        self._by_name: dict[str, _V] = {}
        self._by_value: dict[int, str] = {}
        for full, value in enum.items():
            short = full.removeprefix(prefix).lower()
            if short == "unspecified":
                continue
            self._by_name[short] = value
            self._by_name[full.lower()] = value
            self._by_value[int(value)] = short
        self.names: tuple[str, ...] = tuple(self._by_value.values())

    def parse(self, name: str | int) -> _V:
        """The enum value for a user-facing name (or a known enum number)."""
        if isinstance(name, int):
            if name in self._by_value:
                return self._by_name[self._by_value[name]]
            raise InvalidArgument(f"unknown {self.what} {name}; expected one of: {', '.join(self.names)}")
        key = name.strip().lower().replace("-", "_")
        try:
            return self._by_name[key]
        except KeyError:
            raise InvalidArgument(f"unknown {self.what} {name!r}; expected one of: {', '.join(self.names)}") from None

    def name(self, value: int) -> str:
        """The user-facing name of an enum value; 0 reads as what the server treats it as."""
        if value == 0:
            return self._unspecified
        return self._by_value.get(int(value), f"unknown({value})")


STATUS = EnumNames("status", common_pb2.TaskStatus, "TASK_STATUS_")
# The proto says an unset priority is treated as MEDIUM and an unset type as
# CUSTOM, so that is what a person is shown.
PRIORITY = EnumNames("priority", common_pb2.Priority, "PRIORITY_", unspecified="medium")
TASK_TYPE = EnumNames("task type", common_pb2.TaskType, "TASK_TYPE_", unspecified="custom")
HOST_STATUS = EnumNames("host status", hosts_pb2.HostStatus, "HOST_STATUS_")
AGENT_STATUS = EnumNames("agent status", hosts_pb2.AgentStatus, "AGENT_STATUS_")
# An unset policy is treated as FAIL by the control plane.
DEPENDENCY_FAILURE = EnumNames(
    "dependency failure policy", common_pb2.DependencyFailurePolicy, "DEPENDENCY_FAILURE_POLICY_", unspecified="fail"
)
BATCH_STATE = EnumNames("batch state", templates_pb2.BatchState, "BATCH_STATE_")

FINAL_STATUSES: frozenset[int] = frozenset(
    {
        common_pb2.TASK_STATUS_COMPLETED,
        common_pb2.TASK_STATUS_FAILED,
        common_pb2.TASK_STATUS_CANCELLED,
        common_pb2.TASK_STATUS_TIMED_OUT,
    }
)


def parse_status(name: str | int) -> common_pb2.TaskStatus.ValueType:
    """TaskStatus for "completed", "timed-out", "RUNNING", ...; raises InvalidArgument."""
    return STATUS.parse(name)


def status_name(value: int) -> str:
    """The name of a TaskStatus: "completed" for TASK_STATUS_COMPLETED, and so on."""
    return STATUS.name(value)


def parse_priority(name: str | int) -> common_pb2.Priority.ValueType:
    """Priority for "critical", "high", "medium", "low"; raises InvalidArgument."""
    return PRIORITY.parse(name)


def priority_name(value: int) -> str:
    """The name of a Priority ("high"); PRIORITY_UNSPECIFIED reads "medium", as the server treats it."""
    return PRIORITY.name(value)


def parse_task_type(name: str | int) -> common_pb2.TaskType.ValueType:
    """TaskType for "research", "coding", "analysis", ...; raises InvalidArgument."""
    return TASK_TYPE.parse(name)


def task_type_name(value: int) -> str:
    """The name of a TaskType ("analysis"); TASK_TYPE_UNSPECIFIED reads "custom"."""
    return TASK_TYPE.name(value)


def parse_dependency_failure(name: str | int) -> common_pb2.DependencyFailurePolicy.ValueType:
    """DependencyFailurePolicy for "fail", "skip" or "continue"; raises InvalidArgument."""
    return DEPENDENCY_FAILURE.parse(name)


def dependency_failure_name(value: int) -> str:
    """The name of a DependencyFailurePolicy ("skip"); unset reads "fail", as the server treats it."""
    return DEPENDENCY_FAILURE.name(value)


def batch_state_name(value: int) -> str:
    """The name of a BatchState: "open" or "submitted"."""
    return BATCH_STATE.name(value)


def host_status_name(value: int) -> str:
    """The name of a HostStatus: "connected", "draining" or "lost"."""
    return HOST_STATUS.name(value)


def agent_status_name(value: int) -> str:
    """The name of an AgentStatus: "idle", "busy", "warming", "draining" or "dead"."""
    return AGENT_STATUS.name(value)


def is_final(status: int) -> bool:
    """True for COMPLETED, FAILED, CANCELLED and TIMED_OUT."""
    return status in FINAL_STATUSES
