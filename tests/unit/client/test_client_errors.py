"""gRPC status codes -> the maos.errors tree, and the message for an unreachable control plane."""

from __future__ import annotations

import grpc
import pytest
from maos.client import from_rpc_error
from maos.errors import (
    ERRORS_BY_CODE,
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    MaosError,
    NotFound,
    ResourceExhausted,
    Unavailable,
)


class FakeRpcError(grpc.RpcError):
    """What grpc raises: an RpcError that is also a Call with code() and details()."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self._code = code
        self._details = details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


ENDPOINT = "127.0.0.1:7700"


@pytest.mark.parametrize("name", sorted(ERRORS_BY_CODE))
def test_every_mapped_code_becomes_its_class(name: str) -> None:
    code = grpc.StatusCode[name]
    details = "task 'x' not found" if name != "UNAVAILABLE" else "the store is restarting"
    err = from_rpc_error(FakeRpcError(code, details), ENDPOINT)
    assert type(err) is ERRORS_BY_CODE[name]
    assert err.code == name
    assert str(err) == details


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, InvalidArgument),
        (grpc.StatusCode.NOT_FOUND, NotFound),
        (grpc.StatusCode.ALREADY_EXISTS, AlreadyExists),
        (grpc.StatusCode.FAILED_PRECONDITION, FailedPrecondition),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, ResourceExhausted),
    ],
)
def test_common_codes(code: grpc.StatusCode, cls: type[MaosError]) -> None:
    assert isinstance(from_rpc_error(FakeRpcError(code, "why"), ENDPOINT), cls)


@pytest.mark.parametrize(
    "details",
    [
        "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:7700: Failed to connect",
        "Connection refused",
        "DNS resolution failed for nosuchhost:7700",
        "",
    ],
)
def test_unreachable_control_plane_says_where_and_what_to_do(details: str) -> None:
    err = from_rpc_error(FakeRpcError(grpc.StatusCode.UNAVAILABLE, details), "10.0.0.9:7701")
    assert isinstance(err, Unavailable)
    assert str(err) == (
        "cannot reach the MAOS control plane at 10.0.0.9:7701 — start one with `maosctl up` "
        "or set --endpoint / MAOS_ENDPOINT"
    )


def test_server_sent_unavailable_keeps_its_message() -> None:
    err = from_rpc_error(FakeRpcError(grpc.StatusCode.UNAVAILABLE, "the control plane is shutting down"), ENDPOINT)
    assert isinstance(err, Unavailable)
    assert str(err) == "the control plane is shutting down"


def test_codes_without_a_class_keep_their_name() -> None:
    err = from_rpc_error(FakeRpcError(grpc.StatusCode.CANCELLED, "Locally cancelled"), ENDPOINT)
    assert type(err) is MaosError
    assert err.code == "CANCELLED"
    assert "Locally cancelled" in str(err)


def test_unimplemented_names_the_endpoint() -> None:
    err = from_rpc_error(FakeRpcError(grpc.StatusCode.UNIMPLEMENTED, "Method not found!"), ENDPOINT)
    assert ENDPOINT in str(err)
    assert err.code == "UNIMPLEMENTED"


def test_multi_line_details_become_one_line() -> None:
    err = from_rpc_error(FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT, "bad spec\n  field: x"), ENDPOINT)
    assert str(err) == "bad spec field: x"
