"""Endpoint lists for active/standby control planes, and where to go after a failure."""

from __future__ import annotations

import pytest
from maos.client._endpoints import EndpointRotation, leader_hint, parse_endpoints, worth_another_endpoint
from maos.errors import InvalidArgument

REFUSAL = "this control plane is a standby; the leader is 10.0.0.2:7700 (epoch 3)"


def test_a_comma_separated_setting_lists_every_address() -> None:
    assert parse_endpoints(" 10.0.0.1:7700, 10.0.0.2:7700 ") == ["10.0.0.1:7700", "10.0.0.2:7700"]
    assert parse_endpoints("unix:/run/maos.sock") == ["unix:/run/maos.sock"]
    for bad in ("", " , ", "10.0.0.1", "10.0.0.1:0", "a:b"):
        with pytest.raises(InvalidArgument):
            parse_endpoints(bad)


def test_a_standby_names_the_leader_and_the_rotation_goes_there() -> None:
    assert leader_hint(REFUSAL) == "10.0.0.2:7700"
    assert leader_hint("no leader has been elected yet") is None
    rotation = EndpointRotation(["10.0.0.1:7700", "10.0.0.3:7700"])
    assert rotation.failed(REFUSAL) == "10.0.0.2:7700"  # not in the list: the standby's word is taken
    assert rotation.failed("failed to connect to all addresses") == "10.0.0.1:7700"  # then round the list
    assert rotation.failed("") == "10.0.0.3:7700"


def test_only_refusals_and_unreachable_addresses_are_retried_elsewhere() -> None:
    assert worth_another_endpoint(REFUSAL)
    assert worth_another_endpoint("failed to connect to all addresses; last error: Connection refused")
    assert not worth_another_endpoint("the control plane is shutting down")  # it may have taken effect
    assert not worth_another_endpoint("Socket closed")  # dropped mid-call: the request may have arrived


def test_a_client_moves_on_only_when_there_is_somewhere_else_and_the_call_never_landed() -> None:
    alone = EndpointRotation(["10.0.0.1:7700"])
    assert not alone.move_after("failed to connect to all addresses")  # nowhere else to go
    assert alone.move_after(REFUSAL) and alone.current == "10.0.0.2:7700"  # a standby named the leader
    pair = EndpointRotation(["10.0.0.1:7700", "10.0.0.2:7700"])
    assert not pair.move_after("Socket closed") and pair.current == "10.0.0.1:7700"
    assert pair.move_after("failed to connect to all addresses") and pair.current == "10.0.0.2:7700"
