"""Enum names: what users type ("high", "timed-out") <-> protobuf values."""

from __future__ import annotations

import pytest
from maos.client import (
    agent_status_name,
    host_status_name,
    is_final,
    parse_priority,
    parse_status,
    parse_task_type,
    priority_name,
    status_name,
    task_type_name,
)
from maos.errors import InvalidArgument
from maos.v1 import common_pb2, hosts_pb2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("high", common_pb2.PRIORITY_HIGH),
        ("HIGH", common_pb2.PRIORITY_HIGH),
        ("  Critical ", common_pb2.PRIORITY_CRITICAL),
        ("priority_low", common_pb2.PRIORITY_LOW),
        ("PRIORITY_MEDIUM", common_pb2.PRIORITY_MEDIUM),
        (2, common_pb2.PRIORITY_HIGH),
    ],
)
def test_parse_priority_accepts_names_in_any_case(text: str | int, expected: int) -> None:
    assert parse_priority(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("completed", common_pb2.TASK_STATUS_COMPLETED),
        ("timed_out", common_pb2.TASK_STATUS_TIMED_OUT),
        ("timed-out", common_pb2.TASK_STATUS_TIMED_OUT),
        ("Running", common_pb2.TASK_STATUS_RUNNING),
    ],
)
def test_parse_status(text: str, expected: int) -> None:
    assert parse_status(text) == expected


def test_parse_task_type() -> None:
    assert parse_task_type("analysis") == common_pb2.TASK_TYPE_ANALYSIS
    assert parse_task_type("Coordination") == common_pb2.TASK_TYPE_COORDINATION


def test_unknown_name_lists_the_allowed_ones() -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_priority("urgent")
    message = str(info.value)
    assert "'urgent'" in message
    assert "critical, high, medium, low" in message


def test_unspecified_is_not_a_valid_choice() -> None:
    with pytest.raises(InvalidArgument, match="expected one of: pending"):
        parse_status("unspecified")
    with pytest.raises(InvalidArgument):
        parse_priority(0)
    with pytest.raises(InvalidArgument):
        parse_task_type(99)


def test_names_are_lower_case_without_prefix() -> None:
    assert status_name(common_pb2.TASK_STATUS_TIMED_OUT) == "timed_out"
    assert priority_name(common_pb2.PRIORITY_CRITICAL) == "critical"
    assert task_type_name(common_pb2.TASK_TYPE_RESEARCH) == "research"
    assert host_status_name(hosts_pb2.HOST_STATUS_DRAINING) == "draining"
    assert agent_status_name(hosts_pb2.AGENT_STATUS_BUSY) == "busy"


def test_unset_values_read_as_what_the_server_treats_them_as() -> None:
    assert priority_name(common_pb2.PRIORITY_UNSPECIFIED) == "medium"
    assert task_type_name(common_pb2.TASK_TYPE_UNSPECIFIED) == "custom"
    assert status_name(common_pb2.TASK_STATUS_UNSPECIFIED) == "unspecified"
    assert status_name(42) == "unknown(42)"


def test_round_trip_every_status() -> None:
    for value in common_pb2.TaskStatus.values():
        if value:
            assert parse_status(status_name(value)) == value


def test_final_statuses() -> None:
    finals = {s for s in common_pb2.TaskStatus.values() if is_final(s)}
    assert finals == {
        common_pb2.TASK_STATUS_COMPLETED,
        common_pb2.TASK_STATUS_FAILED,
        common_pb2.TASK_STATUS_CANCELLED,
        common_pb2.TASK_STATUS_TIMED_OUT,
    }
